//! `RouteMatch`, `HeaderMatcher`, `QueryParameterMatcher` and `StringMatcher`.

use envoy_types::pb::envoy::config::route::v3::{
    HeaderMatcher, QueryParameterMatcher, RouteMatch as PbRouteMatch,
    header_matcher::HeaderMatchSpecifier, query_parameter_matcher::QueryParameterMatchSpecifier,
    route_match::PathSpecifier,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    RegexMatcher, StringMatcher, string_matcher::MatchPattern,
};
use mesh_core::route::{HeaderMatch, PathMatch, QueryParamMatch, RouteMatch};
use mesh_core::{Percent, Regex, StringMatch};

use crate::codec::decode::{Ctx, fractional, join};

/// Decodes a route's match. Conditions we cannot evaluate (`grpc`, `cookies`, `tls_context`,
/// metadata, filter state, a runtime fraction below 100 %) are errors: ignoring one would route
/// requests the control plane meant for another route.
///
/// `path_separated_prefix` is matched exactly, as the regex `<prefix>(/.*)?` (case-insensitive
/// when `case_sensitive` is false). An empty `prefix` is read as `/`: every path starts with it.
pub(super) fn route_match(ctx: &mut Ctx, at: &str, m: Option<PbRouteMatch>) -> RouteMatch {
    let Some(m) = m else {
        ctx.error(at, "required");
        return RouteMatch::default();
    };
    let PbRouteMatch {
        case_sensitive,
        runtime_fraction,
        headers,
        query_parameters,
        cookies,
        grpc,
        tls_context,
        dynamic_metadata,
        filter_state,
        path_specifier,
    } = m;
    let case_sensitive = case_sensitive.is_none_or(|b| b.value);
    let path = match path_specifier {
        Some(PathSpecifier::Prefix(p)) if p.is_empty() => PathMatch::Prefix("/".into()),
        Some(PathSpecifier::Prefix(p)) => PathMatch::Prefix(p),
        Some(PathSpecifier::Path(p)) => PathMatch::Exact(p),
        Some(PathSpecifier::SafeRegex(r)) => {
            regex(ctx, &join(at, "safe_regex"), r).map_or_else(default_path, PathMatch::Regex)
        }
        Some(PathSpecifier::PathSeparatedPrefix(p)) => {
            path_separated_prefix(ctx, &join(at, "path_separated_prefix"), &p, case_sensitive)
        }
        Some(PathSpecifier::ConnectMatcher(_)) => {
            ctx.error(
                join(at, "connect_matcher"),
                "CONNECT matching is not supported",
            );
            default_path()
        }
        Some(PathSpecifier::PathMatchPolicy(_)) => {
            let reason = "path_match_policy (URI templates) is not supported";
            ctx.error(join(at, "path_match_policy"), reason);
            default_path()
        }
        None => {
            ctx.error(
                at,
                "a path specifier (prefix, path or safe_regex) is required",
            );
            default_path()
        }
    };
    if let Some(rf) = runtime_fraction {
        let field = join(at, "runtime_fraction");
        let share = rf.default_value.map(|p| fractional(ctx, &field, &p));
        if share != Some(Percent::ALL) {
            ctx.error(&field, "matching a share of requests is not supported");
        } else if !rf.runtime_key.is_empty() {
            ctx.warn(
                join(&field, "runtime_key"),
                "runtime overrides are not supported",
            );
        }
    }
    reject_set!(
        ctx, at, "matching on this is not supported";
        cookies, grpc, tls_context, dynamic_metadata, filter_state,
    );
    RouteMatch {
        path,
        case_sensitive,
        headers: headers
            .into_iter()
            .enumerate()
            .map(|(i, h)| header_match(ctx, &format!("{at}.headers[{i}]"), h))
            .collect(),
        query_params: query_parameters
            .into_iter()
            .enumerate()
            .map(|(i, q)| query_match(ctx, &format!("{at}.query_parameters[{i}]"), q))
            .collect(),
    }
}

fn default_path() -> PathMatch {
    PathMatch::Prefix("/".into())
}

/// Envoy's rule: no `?` or `#`, and not ending in `/`; the path equals the prefix or continues
/// with `/`.
fn path_separated_prefix(ctx: &mut Ctx, field: &str, p: &str, case_sensitive: bool) -> PathMatch {
    if !p.starts_with('/') || p.len() < 2 || p.ends_with('/') || p.contains(['?', '#']) {
        ctx.error(
            field,
            format!("{p:?} must start with '/', not end with '/', and hold no '?' or '#'"),
        );
        return default_path();
    }
    let pattern = format!("{}(?s:/.*)?", literal(p, !case_sensitive));
    compile(ctx, field, &pattern).map_or_else(default_path, PathMatch::Regex)
}

/// A `HeaderMatcher`, including the deprecated `exact_match`, `prefix_match`, … fields that some
/// control planes still send.
pub(in crate::codec::decode) fn header_match(
    ctx: &mut Ctx,
    at: &str,
    h: HeaderMatcher,
) -> HeaderMatch {
    let HeaderMatcher {
        name,
        invert_match,
        treat_missing_header_as_empty,
        header_match_specifier,
    } = h;
    if treat_missing_header_as_empty {
        ctx.error(
            join(at, "treat_missing_header_as_empty"),
            "not supported: it changes which requests match",
        );
    }
    let mut invert = invert_match;
    let value = match header_match_specifier {
        // Envoy reads a matcher without a specifier as a presence check.
        None | Some(HeaderMatchSpecifier::PresentMatch(true)) => None,
        // `present_match: false` matches when the header is absent.
        Some(HeaderMatchSpecifier::PresentMatch(false)) => {
            invert = !invert;
            None
        }
        Some(HeaderMatchSpecifier::ExactMatch(s)) => Some(StringMatch::Exact(s)),
        Some(HeaderMatchSpecifier::PrefixMatch(s)) => normalize(StringMatch::Prefix(s)),
        Some(HeaderMatchSpecifier::SuffixMatch(s)) => normalize(StringMatch::Suffix(s)),
        Some(HeaderMatchSpecifier::ContainsMatch(s)) => normalize(StringMatch::Contains(s)),
        Some(HeaderMatchSpecifier::SafeRegexMatch(r)) => {
            regex(ctx, &join(at, "safe_regex_match"), r)
                .and_then(|r| normalize(StringMatch::Regex(r)))
        }
        Some(HeaderMatchSpecifier::StringMatch(m)) => {
            string_match(ctx, &join(at, "string_match"), m)
        }
        Some(HeaderMatchSpecifier::RangeMatch(_)) => {
            ctx.error(join(at, "range_match"), "range matching is not supported");
            None
        }
    };
    HeaderMatch {
        name,
        value,
        invert,
    }
}

/// A `QueryParameterMatcher`; like Envoy, a matcher without a string match (whatever its
/// `present_match`) checks presence.
fn query_match(ctx: &mut Ctx, at: &str, q: QueryParameterMatcher) -> QueryParamMatch {
    let QueryParameterMatcher {
        name,
        query_parameter_match_specifier,
    } = q;
    let value = match query_parameter_match_specifier {
        Some(QueryParameterMatchSpecifier::StringMatch(m)) => {
            string_match(ctx, &join(at, "string_match"), m)
        }
        Some(QueryParameterMatchSpecifier::PresentMatch(_)) | None => None,
    };
    QueryParamMatch { name, value }
}

/// A `StringMatcher`, or `None` when it matches every value (an empty prefix, suffix or
/// substring, as the encoder writes `present_match`). `ignore_case` is honoured exactly, as an
/// ASCII-case-insensitive regex (Envoy ignores it for `safe_regex`, and so do we).
pub(in crate::codec::decode) fn string_match(
    ctx: &mut Ctx,
    at: &str,
    m: StringMatcher,
) -> Option<StringMatch> {
    let StringMatcher {
        ignore_case,
        match_pattern,
    } = m;
    let folded = |s: &str| ignore_case && s.bytes().any(|b| b.is_ascii_alphabetic());
    let folded_pattern = match &match_pattern {
        Some(MatchPattern::Exact(s)) if folded(s) => Some(literal(s, true)),
        Some(MatchPattern::Prefix(s)) if folded(s) => Some(format!("{}(?s:.*)", literal(s, true))),
        Some(MatchPattern::Suffix(s)) if folded(s) => Some(format!("(?s:.*){}", literal(s, true))),
        Some(MatchPattern::Contains(s)) if folded(s) => {
            Some(format!("(?s:.*){}(?s:.*)", literal(s, true)))
        }
        _ => None,
    };
    if let Some(pattern) = folded_pattern {
        return compile(ctx, at, &pattern).map(StringMatch::Regex);
    }
    let m = match match_pattern {
        Some(MatchPattern::Exact(s)) => StringMatch::Exact(s),
        Some(MatchPattern::Prefix(s)) => StringMatch::Prefix(s),
        Some(MatchPattern::Suffix(s)) => StringMatch::Suffix(s),
        Some(MatchPattern::Contains(s)) => StringMatch::Contains(s),
        Some(MatchPattern::SafeRegex(r)) => {
            StringMatch::Regex(regex(ctx, &join(at, "safe_regex"), r)?)
        }
        Some(MatchPattern::Custom(_)) => {
            ctx.error(join(at, "custom"), "custom matchers are not supported");
            return None;
        }
        None => {
            ctx.error(at, "a match pattern is required");
            return None;
        }
    };
    normalize(m)
}

/// The encoder's canonical forms: an empty prefix, suffix or substring matches every value
/// (`None`), and an empty full-match regex matches only `""`.
fn normalize(m: StringMatch) -> Option<StringMatch> {
    match m {
        StringMatch::Prefix(s) | StringMatch::Suffix(s) | StringMatch::Contains(s)
            if s.is_empty() =>
        {
            None
        }
        StringMatch::Regex(r) if r.as_str().is_empty() => Some(StringMatch::Exact(String::new())),
        m => Some(m),
    }
}

/// `s` as a regex literal, ASCII-case-insensitive when asked (as Envoy's `ignore_case`).
fn literal(s: &str, ignore_case: bool) -> String {
    if ignore_case {
        format!("(?i-u:{})", regex::escape(s))
    } else {
        regex::escape(s)
    }
}

/// A `RegexMatcher` (RE2 syntax; the `regex` crate accepts the same minus a few extensions).
pub(super) fn regex(ctx: &mut Ctx, field: &str, r: RegexMatcher) -> Option<Regex> {
    compile(ctx, field, &r.regex)
}

fn compile(ctx: &mut Ctx, field: &str, pattern: &str) -> Option<Regex> {
    match Regex::new(pattern) {
        Ok(r) => Some(r),
        Err(e) => {
            let e = e.to_string();
            let e = e.split_whitespace().collect::<Vec<_>>().join(" ");
            ctx.error(field, format!("invalid regex {pattern:?}: {e}"));
            None
        }
    }
}
