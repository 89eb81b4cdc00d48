//! Header changes on routes: `*_headers_to_add` and `*_headers_to_remove`.

use envoy_types::pb::envoy::config::core::v3::{
    HeaderValue, HeaderValueOption, header_value_option::HeaderAppendAction,
};
use mesh_core::route::HeaderMutation;

use crate::codec::decode::{Ctx, join};

/// `*_headers_to_add` and `*_headers_to_remove`. `append_action` `OVERWRITE_IF_EXISTS_OR_ADD` is
/// a set and `APPEND_IF_EXISTS_OR_ADD` (the default) an add; the deprecated `append` (true: add,
/// false: set) is read when present. The two conditional actions are errors.
pub(super) fn mutation(
    ctx: &mut Ctx,
    at: &str,
    add_field: &str,
    add: Vec<HeaderValueOption>,
    remove: Vec<String>,
) -> HeaderMutation {
    let mut m = HeaderMutation {
        remove,
        ..HeaderMutation::default()
    };
    for (i, o) in add.into_iter().enumerate() {
        let at = format!("{at}.{add_field}[{i}]");
        let HeaderValueOption {
            header,
            append,
            append_action,
            keep_empty_value: _,
        } = o;
        let Some(HeaderValue {
            key,
            value,
            raw_value,
        }) = header
        else {
            ctx.error(join(&at, "header"), "required");
            continue;
        };
        let value = if raw_value.is_empty() {
            value
        } else {
            match String::from_utf8(raw_value) {
                Ok(v) if value.is_empty() => v,
                Ok(_) => {
                    ctx.error(join(&at, "header"), "value and raw_value are both set");
                    continue;
                }
                Err(_) => {
                    ctx.error(join(&at, "header.raw_value"), "not UTF-8");
                    continue;
                }
            }
        };
        let action = HeaderAppendAction::try_from(append_action);
        let set = match (append, action) {
            (Some(_), Ok(a)) if a != HeaderAppendAction::AppendIfExistsOrAdd => {
                ctx.error(&at, "append and append_action are both set");
                continue;
            }
            (Some(append), _) => !append.value,
            (None, Ok(HeaderAppendAction::AppendIfExistsOrAdd)) => false,
            (None, Ok(HeaderAppendAction::OverwriteIfExistsOrAdd)) => true,
            (None, Ok(a)) => {
                let reason = format!(
                    "{} is not supported (only append or overwrite)",
                    a.as_str_name()
                );
                ctx.error(join(&at, "append_action"), reason);
                continue;
            }
            (None, Err(_)) => {
                ctx.error(
                    join(&at, "append_action"),
                    format!("unknown value {append_action}"),
                );
                continue;
            }
        };
        if set {
            m.set.push((key, value));
        } else {
            m.add.push((key, value));
        }
    }
    m
}
