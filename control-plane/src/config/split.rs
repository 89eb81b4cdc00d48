//! Splitting a file into YAML documents ourselves, so that one malformed document never hides
//! the others (a YAML parser stops at the first error).

/// One document's text and where it starts.
pub(crate) struct Chunk<'a> {
    pub(crate) text: &'a str,
    /// 1-based line of the chunk's first line.
    pub(crate) first_line: usize,
    /// 1-based line of the first line that is not blank or a comment.
    pub(crate) content_line: usize,
}

/// Splits on lines that are exactly `---`, optionally followed by blanks and a comment.
pub(crate) fn split_documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let (mut start, mut start_line, mut content_line) = (0, 1, None);
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let lineno = i + 1;
        if is_separator(line) {
            chunks.push(Chunk {
                text: &text[start..offset],
                first_line: start_line,
                content_line: content_line.unwrap_or(start_line),
            });
            start = offset + line.len();
            start_line = lineno + 1;
            content_line = None;
        } else if content_line.is_none() {
            let t = line.trim();
            if !t.is_empty() && !t.starts_with('#') {
                content_line = Some(lineno);
            }
        }
        offset += line.len();
    }
    chunks.push(Chunk {
        text: &text[start..],
        first_line: start_line,
        content_line: content_line.unwrap_or(start_line),
    });
    chunks
}

#[cfg(test)]
pub(crate) fn is_separator_for_tests(line: &str) -> bool {
    is_separator(line)
}

fn is_separator(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("---") else {
        return false;
    };
    let rest = rest.trim_end_matches(['\n', '\r']);
    rest.is_empty()
        || (rest.starts_with([' ', '\t'])
            && matches!(rest.trim_start().chars().next(), None | Some('#')))
}
