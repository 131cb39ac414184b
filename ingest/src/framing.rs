//! Finding records inside a JSON document without decoding the whole document.
//!
//! A Graph page (`{"value":[...]}`), an Event Hub envelope (`{"records":[...]}`) or a Log Analytics
//! JSON export (`[...]`) can be many megabytes. The scanner below walks the bytes once, tracking only
//! strings and nesting, and hands out the byte range of each record; each record is then decoded on
//! its own. So memory is bounded by the largest record, a truncated file still yields every complete
//! record before the cut, and one bad record does not cost its neighbours.

/// Where scanning stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// The input ended inside a value.
    Truncated,
    /// A byte that cannot start or continue a JSON value, at this offset.
    Unexpected(usize),
}

/// The parts of one top-level JSON document.
#[derive(Debug, Default)]
pub struct Document {
    /// Byte ranges of the records: the items of `value` / `records`, of a top-level array, or the
    /// whole document when it is a single record.
    pub records: Vec<(usize, usize)>,
    /// `@odata.context` when the document had one (names the Graph entity type).
    pub odata_context: Option<String>,
    /// Where the document ends (exclusive).
    pub end: usize,
    /// Set when scanning stopped early; the ranges before it are complete.
    pub error: Option<ScanError>,
}

pub fn skip_ws(buf: &[u8], mut pos: usize) -> usize {
    while pos < buf.len() && matches!(buf[pos], b' ' | b'\t' | b'\r' | b'\n') {
        pos += 1;
    }
    pos
}

/// Skips one JSON string starting at `pos` (which holds `"`); returns the offset after it.
fn skip_string(buf: &[u8], pos: usize) -> Result<usize, ScanError> {
    let mut i = pos + 1;
    loop {
        match memchr::memchr2(b'"', b'\\', &buf[i.min(buf.len())..]) {
            None => return Err(ScanError::Truncated),
            Some(off) => {
                let at = i + off;
                if buf[at] == b'\\' {
                    i = at + 2;
                    if i > buf.len() {
                        return Err(ScanError::Truncated);
                    }
                } else {
                    return Ok(at + 1);
                }
            }
        }
    }
}

/// Skips one JSON value starting at `pos` (after whitespace); returns the offset after it.
/// Validation is shallow (nesting and strings); the decoder checks the rest.
pub fn skip_value(buf: &[u8], pos: usize) -> Result<usize, ScanError> {
    let pos = skip_ws(buf, pos);
    let Some(&first) = buf.get(pos) else {
        return Err(ScanError::Truncated);
    };
    match first {
        b'"' => skip_string(buf, pos),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = pos;
            while i < buf.len() {
                match buf[i] {
                    b'"' => {
                        i = skip_string(buf, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            Err(ScanError::Truncated)
        }
        b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
            let mut i = pos;
            while i < buf.len()
                && (buf[i].is_ascii_alphanumeric() || matches!(buf[i], b'-' | b'+' | b'.'))
            {
                i += 1;
            }
            Ok(i)
        }
        _ => Err(ScanError::Unexpected(pos)),
    }
}

/// Scans the items of the array starting at `pos` (which holds `[`) into `out`.
fn scan_array(buf: &[u8], pos: usize, out: &mut Vec<(usize, usize)>) -> Result<usize, ScanError> {
    let mut i = skip_ws(buf, pos + 1);
    if buf.get(i) == Some(&b']') {
        return Ok(i + 1);
    }
    loop {
        let start = skip_ws(buf, i);
        let end = skip_value(buf, start)?;
        out.push((start, end));
        i = skip_ws(buf, end);
        match buf.get(i) {
            Some(b',') => i += 1,
            Some(b']') => return Ok(i + 1),
            Some(_) => return Err(ScanError::Unexpected(i)),
            None => return Err(ScanError::Truncated),
        }
    }
}

/// Scans one top-level document starting at `pos`.
pub fn scan_document(buf: &[u8], pos: usize) -> Document {
    let mut doc = Document::default();
    let start = skip_ws(buf, pos);
    let result = match buf.get(start) {
        Some(b'[') => scan_array(buf, start, &mut doc.records),
        Some(b'{') => scan_object(buf, start, &mut doc),
        Some(_) => Err(ScanError::Unexpected(start)),
        None => Err(ScanError::Truncated),
    };
    match result {
        Ok(end) => doc.end = end,
        Err(e) => {
            doc.end = buf.len();
            doc.error = Some(e);
        }
    }
    doc
}

/// An object: a page or envelope when it holds `value` / `records` as an array, else one record.
fn scan_object(buf: &[u8], start: usize, doc: &mut Document) -> Result<usize, ScanError> {
    let mut i = skip_ws(buf, start + 1);
    let mut items: Option<Vec<(usize, usize)>> = None;
    let mut item_error: Option<ScanError> = None;
    if buf.get(i) != Some(&b'}') {
        loop {
            let key_start = skip_ws(buf, i);
            if buf.get(key_start) != Some(&b'"') {
                return Err(if key_start >= buf.len() {
                    ScanError::Truncated
                } else {
                    ScanError::Unexpected(key_start)
                });
            }
            let key_end = skip_string(buf, key_start)?;
            let key = &buf[key_start + 1..key_end - 1];
            i = skip_ws(buf, key_end);
            match buf.get(i) {
                Some(b':') => i += 1,
                Some(_) => return Err(ScanError::Unexpected(i)),
                None => return Err(ScanError::Truncated),
            }
            let value_start = skip_ws(buf, i);
            let is_list_key = key == b"value" || key == b"records";
            if is_list_key && items.is_none() && buf.get(value_start) == Some(&b'[') {
                let mut found = Vec::new();
                match scan_array(buf, value_start, &mut found) {
                    Ok(end) => {
                        items = Some(found);
                        i = end;
                    }
                    Err(e) => {
                        // Keep the complete items before the cut; the document ends here.
                        items = Some(found);
                        item_error = Some(e);
                        break;
                    }
                }
            } else {
                let end = skip_value(buf, value_start)?;
                if key == b"@odata.context" {
                    doc.odata_context =
                        serde_json::from_slice::<String>(&buf[value_start..end]).ok();
                }
                i = end;
            }
            i = skip_ws(buf, i);
            match buf.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => break,
                Some(_) => return Err(ScanError::Unexpected(i)),
                None => return Err(ScanError::Truncated),
            }
        }
    }
    match items {
        Some(found) => {
            doc.records = found;
            match item_error {
                Some(e) => Err(e),
                None => Ok(i + 1),
            }
        }
        None => {
            let end = i + 1;
            doc.records.push((start, end));
            Ok(end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(buf: &str) -> (Vec<&str>, Option<ScanError>) {
        let d = scan_document(buf.as_bytes(), 0);
        (
            d.records.iter().map(|(s, e)| &buf[*s..*e]).collect(),
            d.error,
        )
    }

    #[test]
    fn pages_envelopes_arrays_and_single_records() {
        let (r, e) = texts(
            r#"{"@odata.context":"x#auditLogs/signIns","value":[{"a":"]}"},{"b":[1,{"c":"\""}]}],"@odata.nextLink":"n"}"#,
        );
        assert_eq!(r, vec![r#"{"a":"]}"}"#, r#"{"b":[1,{"c":"\""}]}"#]);
        assert_eq!(e, None);
        let (r, _) = texts(r#"  {"records": [ {"x":1} ] }"#);
        assert_eq!(r, vec![r#"{"x":1}"#]);
        let (r, _) = texts(r#"[{"x":1}, {"y":2}]"#);
        assert_eq!(r.len(), 2);
        let (r, _) = texts(r#"{"id":"1","value":"not a list"}"#);
        assert_eq!(r, vec![r#"{"id":"1","value":"not a list"}"#]);
        let d = scan_document(
            br#"{"@odata.context":"https://g/beta/$metadata#auditLogs/signIns","value":[]}"#,
            0,
        );
        assert_eq!(
            d.odata_context.as_deref(),
            Some("https://g/beta/$metadata#auditLogs/signIns")
        );
        assert!(d.records.is_empty());
    }

    #[test]
    fn truncation_keeps_the_complete_records_before_the_cut() {
        let (r, e) = texts(r#"{"value":[{"a":1},{"b":2},{"c":"unterminated"#);
        assert_eq!(r, vec![r#"{"a":1}"#, r#"{"b":2}"#]);
        assert_eq!(e, Some(ScanError::Truncated));
        let (r, e) = texts(r#"{"id":"x","status":{"errorCode":0"#);
        assert!(r.is_empty());
        assert_eq!(e, Some(ScanError::Truncated));
    }

    #[test]
    fn garbage_is_reported_where_it_starts() {
        let d = scan_document(b"  \x00\x01binary", 0);
        assert_eq!(d.error, Some(ScanError::Unexpected(2)));
    }
}
