//! Reading log files of any shape: detection per file and per record, framing, and errors that name
//! the file, the line and the record.
//!
//! Per file: a gzip or binary file is refused as a whole; a file whose first non-blank byte is `{` or
//! `[` is JSON, read as NDJSON (one document per line) when its first line is a whole document and
//! more lines follow, else as one or more concatenated documents; anything else with a comma in its first line
//! is a Log Analytics CSV export. Each document is split into records by [`crate::framing`] and each
//! record normalised on its own, so a bad record costs only itself.

use std::io::Read;
use std::path::Path;

use serde_json::{Map, Value};

use crate::framing::{ScanError, scan_document, skip_ws};
use crate::model::Event;
use crate::normalize::{
    NO_EVENT_TIME, Outcome, RecordContext, graph_kind_from_context, normalize, normalize_fast,
};
use crate::value::is_guid;

/// Largest record decoded; a larger one is rejected unread (an Event Hub event is at most 1 MB).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;
/// How much of a rejected record is kept for inspection.
const MAX_KEPT_RAW_BYTES: usize = 64 * 1024;

/// How to read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// `--tenant`: the tenant of records that carry none (it wins over folder names).
    pub tenant: Option<String>,
    pub max_record_bytes: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            tenant: None,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

/// Where a record was found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Position {
    pub file: String,
    /// 1-based line where the record starts (0 when the problem concerns the whole file).
    pub line: usize,
    /// 1-based index of the record in its file (`None` for problems of the whole file).
    pub record: Option<usize>,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.record) {
            (0, _) => write!(f, "{}", self.file),
            (line, Some(n)) => write!(f, "{}:{line}: record {n}", self.file),
            (line, None) => write!(f, "{}:{line}", self.file),
        }
    }
}

/// A record (or file) that could not be used, with why, and the raw text for inspection.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rejected {
    #[serde(flatten)]
    pub at: Position,
    pub field: Option<String>,
    pub reason: String,
    pub raw: Option<String>,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}: field `{field}`: {}", self.at, self.reason),
            None => write!(f, "{}: {}", self.at, self.reason),
        }
    }
}

/// What reading hands out, in file order.
#[derive(Debug)]
pub enum Item {
    Event(Box<Event>),
    /// A record of a category entrawatch does not read.
    Skipped {
        category: String,
        at: Position,
    },
    Rejected(Rejected),
    /// A file with no records at all.
    EmptyFile {
        file: String,
    },
}

/// The tenant a file's folder names: the nearest parent folder whose name is a tenant GUID.
pub fn tenant_from_path(path: &Path) -> Option<String> {
    path.ancestors()
        .skip(1)
        .filter_map(|p| p.file_name()?.to_str())
        .find(|name| is_guid(name))
        .map(str::to_ascii_lowercase)
}

/// Reads one file (or `-` for stdin) and hands every item to `emit`; returns the bytes read.
///
/// A file that cannot be read is handed out as a rejected file (so it is counted and kept like any
/// other reject) and returned as the error, for callers that report unread input. Only regular
/// files are opened: a named pipe, socket or device is refused unopened (opening a FIFO waits for
/// a writer that may never come).
pub fn read_file(
    path: &Path,
    opts: &ReadOptions,
    emit: &mut dyn FnMut(Item),
) -> std::io::Result<u64> {
    let stdin = path.as_os_str() == "-";
    let name = if stdin {
        "<stdin>".to_owned()
    } else {
        path.display().to_string()
    };
    let bytes = if stdin {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map(|_| buf)
    } else {
        regular_file(path).and_then(|()| std::fs::read(path))
    };
    match bytes {
        Ok(bytes) => {
            let folder_tenant = if stdin { None } else { tenant_from_path(path) };
            let hint = opts.tenant.clone().or(folder_tenant);
            read_bytes(&name, &bytes, hint.as_deref(), opts, emit);
            Ok(bytes.len() as u64)
        }
        Err(e) => {
            emit(Item::Rejected(Rejected {
                at: Position {
                    file: name,
                    line: 0,
                    record: None,
                },
                field: None,
                reason: format!("cannot read file: {e}"),
                raw: None,
            }));
            Err(e)
        }
    }
}

/// `Ok` for a regular file (links followed); an error naming what else it is.
fn regular_file(path: &Path) -> std::io::Result<()> {
    let kind = std::fs::metadata(path)?.file_type();
    if kind.is_file() {
        return Ok(());
    }
    let what = if kind.is_dir() {
        "a folder"
    } else {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            "a named pipe (FIFO)"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "a device"
        }
    };
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{what}, not a regular file: not opened"),
    ))
}

/// Reads an in-memory file of any shape.
pub fn read_bytes(
    name: &str,
    bytes: &[u8],
    tenant_hint: Option<&str>,
    opts: &ReadOptions,
    emit: &mut dyn FnMut(Item),
) {
    read_bytes_with(name, bytes, tenant_hint, opts, emit, fast_path_enabled());
}

/// Whether records are first offered to [`normalize_fast`]: yes, unless the environment variable
/// `ENTRAWATCH_JSON_FAST_PATH` is `0` (every record then goes through a decoded `Value`: slower,
/// the same events; a switch for comparing the two and for ruling the fast path out).
pub fn fast_path_enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| {
        std::env::var("ENTRAWATCH_JSON_FAST_PATH").map_or(true, |v| v.trim() != "0")
    })
}

fn read_bytes_with(
    name: &str,
    bytes: &[u8],
    tenant_hint: Option<&str>,
    opts: &ReadOptions,
    emit: &mut dyn FnMut(Item),
    fast: bool,
) {
    let mut reader = FileReader {
        name,
        fast,
        opts,
        tenant_hint,
        emit,
        record_no: 0,
        any_record: false,
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = skip_ws(bytes, 0);
    if start == bytes.len() {
        (reader.emit)(Item::EmptyFile {
            file: name.to_owned(),
        });
        return;
    }
    if bytes.starts_with(&[0x1f, 0x8b]) {
        reader.file_error(
            "gzip-compressed file: decompress it first (entrawatch reads JSON, NDJSON and CSV)",
        );
        return;
    }
    let head = &bytes[..bytes.len().min(8192)];
    if memchr::memchr(0, head).is_some() {
        reader.file_error("binary file (NUL bytes): not JSON, NDJSON or CSV");
        return;
    }
    match bytes[start] {
        b'{' | b'[' if looks_like_ndjson(&bytes[start..]) => reader.read_lines(bytes),
        b'{' | b'[' => reader.read_documents(bytes, start),
        _ => {
            let first_line = &bytes
                [start..memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i)];
            if memchr::memchr(b',', first_line).is_some() && std::str::from_utf8(first_line).is_ok()
            {
                reader.read_csv(&bytes[start..], line_of(bytes, start));
            } else {
                reader.file_error("not JSON, NDJSON or CSV: the file starts with neither `{`, `[` nor a CSV header");
            }
        }
    }
    if !reader.any_record {
        (reader.emit)(Item::EmptyFile {
            file: name.to_owned(),
        });
    }
}

/// Hands the bytes of every JSON record of an in-memory file to `each`, framed exactly as
/// [`read_bytes`] frames them (NDJSON lines or whole documents, pages and envelopes split into
/// records), without decoding them; the benchmarks' parse-only reference reads through this.
/// Returns false, handing out nothing, for a file that is not JSON (CSV, gzip, binary, empty).
pub fn for_each_json_record(bytes: &[u8], each: &mut dyn FnMut(&[u8])) -> bool {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = skip_ws(bytes, 0);
    if !matches!(bytes.get(start), Some(b'{' | b'[')) {
        return false;
    }
    let mut document = |buf: &[u8], start: usize| {
        let doc = scan_document(buf, start);
        for &(s, e) in &doc.records {
            each(&buf[s..e]);
        }
        doc.end
    };
    if looks_like_ndjson(&bytes[start..]) {
        for line in bytes.split(|b| *b == b'\n') {
            if !line.trim_ascii().is_empty() {
                document(line, 0);
            }
        }
    } else {
        let mut at = start;
        while at < bytes.len() {
            let end = document(bytes, at);
            at = skip_ws(bytes, end);
        }
    }
    true
}

/// NDJSON when the first line is a whole document and more lines follow.
fn looks_like_ndjson(bytes: &[u8]) -> bool {
    let first_end = memchr::memchr(b'\n', bytes).unwrap_or(bytes.len());
    let first = &bytes[..first_end];
    let whole_first =
        crate::framing::skip_value(first, 0).is_ok_and(|end| first[end..].trim_ascii().is_empty());
    whole_first && !bytes[first_end.min(bytes.len())..].trim_ascii().is_empty()
}

fn line_of(bytes: &[u8], offset: usize) -> usize {
    1 + memchr::memchr_iter(b'\n', &bytes[..offset]).count()
}

struct FileReader<'a, 'e> {
    name: &'a str,
    /// Try [`normalize_fast`] before decoding a record into a `Value`.
    fast: bool,
    opts: &'a ReadOptions,
    tenant_hint: Option<&'a str>,
    emit: &'e mut dyn FnMut(Item),
    record_no: usize,
    any_record: bool,
}

impl FileReader<'_, '_> {
    fn position(&self, line: usize, record: Option<usize>) -> Position {
        Position {
            file: self.name.to_owned(),
            line,
            record,
        }
    }

    fn file_error(&mut self, reason: &str) {
        let at = self.position(0, None);
        (self.emit)(Item::Rejected(Rejected {
            at,
            field: None,
            reason: reason.to_owned(),
            raw: None,
        }));
    }

    fn reject(
        &mut self,
        line: usize,
        record: Option<usize>,
        field: Option<String>,
        reason: String,
        raw: &[u8],
    ) {
        let kept = &raw[..raw.len().min(MAX_KEPT_RAW_BYTES)];
        let raw = (!raw.is_empty()).then(|| String::from_utf8_lossy(kept).into_owned());
        let at = self.position(line, record);
        (self.emit)(Item::Rejected(Rejected {
            at,
            field,
            reason,
            raw,
        }));
    }

    /// NDJSON: each non-blank line is a document; a bad line costs only itself.
    fn read_lines(&mut self, bytes: &[u8]) {
        let mut offset = 0;
        for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
            let line_start = offset;
            offset += line.len() + 1;
            if line.trim_ascii().is_empty() {
                continue;
            }
            self.read_document_at(line, 0, line_start, i + 1);
        }
    }

    /// One or more whole documents (a page, an envelope, an array, or concatenated objects).
    fn read_documents(&mut self, bytes: &[u8], mut start: usize) {
        while start < bytes.len() {
            let end = self.read_document_at(bytes, start, 0, line_of(bytes, start));
            start = skip_ws(bytes, end);
        }
    }

    /// Reads the document starting at `start` of `buf` (`buf` begins at `base` of the whole file,
    /// whose line `first_line` holds `start`). Returns where the document ends in `buf`.
    fn read_document_at(
        &mut self,
        buf: &[u8],
        start: usize,
        base: usize,
        first_line: usize,
    ) -> usize {
        let doc = scan_document(buf, start);
        let hint = doc
            .odata_context
            .as_deref()
            .and_then(graph_kind_from_context);
        let mut line = first_line;
        let mut cursor = start;
        for &(s, e) in &doc.records {
            line += memchr::memchr_iter(b'\n', &buf[cursor..s]).count();
            cursor = s;
            self.record_no += 1;
            self.any_record = true;
            self.decode(&buf[s..e], line, hint);
        }
        if let Some(err) = doc.error {
            let (reason, at) = match err {
                ScanError::Truncated => (
                    "truncated JSON: the input ends inside a value (the records before it were read)".to_owned(),
                    doc.records.last().map_or(start, |r| r.1),
                ),
                ScanError::Unexpected(at) => (
                    format!("invalid JSON: unexpected {} at byte {}", describe_byte(buf[at]), base + at),
                    at,
                ),
            };
            let line =
                first_line + memchr::memchr_iter(b'\n', &buf[start..at.min(buf.len())]).count();
            let raw = &buf[at.min(buf.len())..buf.len().min(at + 200)];
            self.any_record = true;
            self.reject(line, None, None, reason, raw);
        }
        doc.end
    }

    fn decode(&mut self, raw: &[u8], line: usize, hint: Option<crate::model::Kind>) {
        let record = Some(self.record_no);
        if raw.len() > self.opts.max_record_bytes {
            let reason = format!(
                "record is {} bytes, over the {}-byte limit per record",
                raw.len(),
                self.opts.max_record_bytes
            );
            self.reject(line, record, None, reason, &raw[..raw.len().min(200)]);
            return;
        }
        let ctx = RecordContext {
            tenant_hint: self.tenant_hint,
            graph_hint: hint,
            csv: false,
        };
        if self.fast
            && let Ok(text) = std::str::from_utf8(raw)
            && let Some(event) = normalize_fast(text, &ctx)
        {
            (self.emit)(Item::Event(event));
            return;
        }
        let map: Map<String, Value> = match serde_json::from_slice::<Value>(raw) {
            Ok(Value::Object(map)) => map,
            Ok(other) => {
                let kind = match other {
                    Value::Array(_) => "an array",
                    Value::String(_) => "a string",
                    Value::Number(_) => "a number",
                    _ => "a scalar",
                };
                self.reject(
                    line,
                    record,
                    None,
                    format!("record is {kind}, not a JSON object"),
                    raw,
                );
                return;
            }
            Err(e) => {
                let reason = format!("invalid JSON: {e}");
                self.reject(line + e.line().saturating_sub(1), record, None, reason, raw);
                return;
            }
        };
        self.finish(normalize(&map, &ctx), line, raw);
    }

    fn finish(
        &mut self,
        outcome: Result<Outcome, crate::normalize::RecordError>,
        line: usize,
        raw: &[u8],
    ) {
        let record = Some(self.record_no);
        match outcome {
            Ok(Outcome::Event(e)) => (self.emit)(Item::Event(e)),
            Ok(Outcome::Skipped { category }) => {
                let at = self.position(line, record);
                (self.emit)(Item::Skipped { category, at });
            }
            Err(e) => self.reject(line, record, Some(e.field), e.reason, raw),
        }
    }

    /// A Log Analytics CSV export: header row, then one record per row (cells may span lines).
    fn read_csv(&mut self, bytes: &[u8], first_line: usize) {
        let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
        let headers: Vec<String> = match rdr.headers() {
            Ok(h) => h.iter().map(normalize_csv_header).collect(),
            Err(e) => {
                self.file_error(&format!("unreadable CSV header: {e}"));
                return;
            }
        };
        if !csv_header_has_time(&headers) {
            // The file has content, judged as a whole: not an empty file.
            self.any_record = true;
            self.file_error(&format!(
                "{NO_EVENT_TIME}: the CSV header has none of the columns an event time is taken \
                 from ({}) and is no role listing: not a Log Analytics export entrawatch reads",
                CSV_TIME_COLUMNS.join(", ")
            ));
            return;
        }
        let mut record = csv::StringRecord::new();
        loop {
            // Where the next row starts (the reader's position is past the row read last).
            let start = rdr.position().byte() as usize;
            let mut line =
                first_line + memchr::memchr_iter(b'\n', &bytes[..start.min(bytes.len())]).count();
            match rdr.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    self.record_no += 1;
                    self.any_record = true;
                    let end = (rdr.position().byte() as usize).min(bytes.len());
                    let raw = &bytes[start.min(end)..end];
                    self.reject(
                        line,
                        Some(self.record_no),
                        None,
                        format!("unreadable CSV row: {e}"),
                        raw,
                    );
                    if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                        break;
                    }
                    continue;
                }
            }
            self.record_no += 1;
            self.any_record = true;
            let mut start = record
                .position()
                .map_or(start, |p| p.byte() as usize)
                .min(bytes.len());
            // After a CRLF row the reader stands on its `\n`: the row itself starts after it.
            while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
                start += 1;
            }
            line = first_line + memchr::memchr_iter(b'\n', &bytes[..start]).count();
            let end = (rdr.position().byte() as usize).clamp(start, bytes.len());
            let raw = bytes[start..end].trim_ascii_end();
            if record.len() != headers.len() {
                let reason = format!(
                    "row has {} fields but the header has {} columns (a missing or extra column)",
                    record.len(),
                    headers.len()
                );
                self.reject(line, Some(self.record_no), None, reason, raw);
                continue;
            }
            let mut map = Map::new();
            for (header, cell) in headers.iter().zip(record.iter()) {
                if cell.trim().is_empty() {
                    continue;
                }
                // `X_dynamic` and `X_string` both fill `X`; the first non-empty one wins.
                map.entry(header.clone())
                    .or_insert_with(|| Value::String(cell.to_owned()));
            }
            let ctx = RecordContext {
                tenant_hint: self.tenant_hint,
                graph_hint: None,
                csv: true,
            };
            self.finish(normalize(&map, &ctx), line, raw);
        }
    }
}

/// The columns of a Log Analytics export that an event time is taken from, for any kind.
const CSV_TIME_COLUMNS: [&str; 8] = [
    "TimeGenerated",
    "CreatedDateTime",
    "ActivityDateTime",
    "AuthenticationDetails",
    "Properties",
    "DetectedDateTime",
    "LastUpdatedDateTime",
    "RiskLastUpdatedDateTime",
];

/// Whether a CSV header (normalised) can give its rows an event time: it has a time column, or it
/// lists role grants (which apply from the start and need none).
fn csv_header_has_time(headers: &[String]) -> bool {
    let has = |name: &str| headers.iter().any(|h| h.eq_ignore_ascii_case(name));
    CSV_TIME_COLUMNS.iter().any(|c| has(c)) || (has("roleDefinitionId") && has("principalId"))
}

/// `CreatedDateTime [UTC]` → `CreatedDateTime`; `DeviceDetail_dynamic` / `_string` → `DeviceDetail`.
fn normalize_csv_header(h: &str) -> String {
    let h = h.trim().trim_start_matches('\u{feff}');
    let h = match h.find(" [") {
        Some(i) if h.ends_with(']') => &h[..i],
        _ => h,
    };
    let h = h
        .strip_suffix("_dynamic")
        .or_else(|| h.strip_suffix("_string"))
        .unwrap_or(h);
    h.to_owned()
}

fn describe_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("`{}`", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;

    fn read(text: &[u8]) -> Vec<Item> {
        let mut items = Vec::new();
        let opts = ReadOptions::default();
        read_bytes(
            "t.json",
            text,
            Some("4d3bac44-0230-4732-9e70-cc00736f0a97"),
            &opts,
            &mut |i| items.push(i),
        );
        items
    }

    #[test]
    fn csv_headers_are_normalised() {
        assert_eq!(
            normalize_csv_header("CreatedDateTime [UTC]"),
            "CreatedDateTime"
        );
        assert_eq!(normalize_csv_header("DeviceDetail_dynamic"), "DeviceDetail");
        assert_eq!(normalize_csv_header("\u{feff}TenantId"), "TenantId");
    }

    #[test]
    fn ndjson_bad_line_costs_only_itself() {
        let text = b"{\"id\":\"a\",\"createdDateTime\":\"2021-01-01T00:00:00Z\",\"userId\":\"u\"}\n{\"id\":\"b\",\"createdDa\n{\"id\":\"c\",\"createdDateTime\":\"2021-01-01T00:00:01Z\",\"userId\":\"u\"}\n";
        let items = read(text);
        let events = items.iter().filter(|i| matches!(i, Item::Event(_))).count();
        let rejected: Vec<_> = items
            .iter()
            .filter_map(|i| match i {
                Item::Rejected(r) => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(events, 2);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].at.line, 2);
        assert!(rejected[0].reason.contains("truncated"), "{}", rejected[0]);
    }

    #[test]
    fn a_csv_whose_header_has_no_time_column_is_rejected_whole() {
        let items = read(b"AADTenantId,Type,Id,UserPrincipalName\r\n4d3bac44-0230-4732-9e70-cc00736f0a97,SigninLogs,a,ann@contoso.com\r\n");
        let [Item::Rejected(r)] = &items[..] else {
            panic!("{items:?}")
        };
        assert_eq!((r.at.line, r.at.record), (0, None));
        assert!(r.reason.starts_with(NO_EVENT_TIME), "{r}");
        assert!(r.reason.contains("TimeGenerated"), "{r}");
        // A role listing needs no time: its grants apply from the start.
        let items = read(b"id,roleDefinitionId,principalId,directoryScopeId\r\ng-1,62e90394-69f5-4237-9190-012177145e10,u-1,/\r\n");
        assert!(matches!(&items[..], [Item::Event(_)]), "{items:?}");
    }

    #[test]
    fn folder_names_give_the_tenant() {
        let p = Path::new("exports/11111111-AAAA-4aaa-8aaa-111111111111/graph/audits.json");
        assert_eq!(
            tenant_from_path(p).as_deref(),
            Some("11111111-aaaa-4aaa-8aaa-111111111111")
        );
        assert_eq!(tenant_from_path(Path::new("exports/x.json")), None);
    }

    // The fast path against the tolerant reader: every fixture file, and thousands of mutated records
    // (fields removed, nulled, emptied, retyped, given as JSON text, re-cased, repeated; values JSON
    // itself refuses), read both ways, must give the same items: same events, same rejects, same
    // messages. Also checks the fast path is actually taken for the ordinary shapes.

    const TENANT: &str = "4d3bac44-0230-4732-9e70-cc00736f0a97";

    fn opts() -> ReadOptions {
        ReadOptions::default()
    }

    fn items(bytes: &[u8], hint: Option<&str>, fast: bool) -> Vec<String> {
        let mut out = Vec::new();
        read_bytes_with(
            "t.json",
            bytes,
            hint,
            &opts(),
            &mut |i: Item| out.push(format!("{i:?}")),
            fast,
        );
        out
    }

    fn assert_same(bytes: &[u8], hint: Option<&str>) {
        let slow = items(bytes, hint, false);
        let fast = items(bytes, hint, true);
        assert_eq!(
            fast,
            slow,
            "fast and tolerant readers differ on:\n{}",
            String::from_utf8_lossy(bytes)
        );
    }

    fn fixture_files() -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            entries.sort();
            for p in entries {
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|e| {
                    ["json", "jsonl", "ndjson", "csv", "log"].contains(&e.to_str().unwrap_or(""))
                }) {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
            &mut out,
        );
        out
    }

    #[test]
    fn every_fixture_reads_the_same_and_most_records_take_the_fast_path() {
        let files = fixture_files();
        assert!(files.len() >= 20, "fixtures: {}", files.len());
        let mut fast_events = 0;
        for file in &files {
            let bytes = std::fs::read(file).unwrap();
            assert_same(&bytes, None);
            assert_same(&bytes, Some(TENANT));
            for_each_json_record(&bytes, &mut |raw| {
                let ctx = RecordContext {
                    tenant_hint: Some(TENANT),
                    graph_hint: None,
                    csv: false,
                };
                if std::str::from_utf8(raw).is_ok_and(|t| normalize_fast(t, &ctx).is_some()) {
                    fast_events += 1;
                }
            });
        }
        // The others are other kinds, Log Analytics rows, odd casing or a repeated key (a Graph sample
        // gives `homeTenantId` twice).
        assert!(fast_events >= 25, "fast path taken {fast_events} times");
    }

    /// Deterministic pseudo-random numbers (SplitMix64).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Values a field may hold in some export or other, and a few no producer writes.
    fn odd_values() -> Vec<Value> {
        vec![
            Value::Null,
            json!(""),
            json!("   "),
            json!("0"),
            json!("50126"),
            json!(" 50074 "),
            json!(50126),
            json!(-1),
            json!(1.5),
            json!(u64::MAX),
            json!(true),
            json!(false),
            json!("TRUE"),
            json!("yes"),
            json!({}),
            json!([]),
            json!(["a", null, 1, {"x": 1}]),
            json!("{\"city\":\"Lagos\",\"countryOrRegion\":\"NG\"}"),
            json!("[\"unlikelyTravel\"]"),
            json!("  [1,2]"),
            json!("{not json"),
            json!(" padded "),
            json!("2021-01-01T00:00:00Z"),
            json!("not a time"),
            json!("4D3BAC44-0230-4732-9E70-CC00736F0A97"),
            json!("/tenants/4D3BAC44-0230-4732-9E70-CC00736F0A97/providers/x"),
            json!("SignInLogs"),
            json!("AuditLogs"),
            json!("ProvisioningLogs"),
            json!({"errorCode": "50126", "failureReason": " bad "}),
            json!([{"authenticationMethod": "Password", "succeeded": "true"}, null]),
            json!("\"quoted\""),
            json!("S\u{e3}o Paulo \u{1F600}"),
        ]
    }

    /// Every (object, key) in the record, by path of object keys and array indexes.
    fn object_slots(v: &Value, path: &mut Vec<Value>, out: &mut Vec<(Vec<Value>, String)>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    out.push((path.clone(), k.clone()));
                    path.push(json!(k));
                    object_slots(child, path, out);
                    path.pop();
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    path.push(json!(i));
                    object_slots(child, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    fn object_at<'v>(v: &'v mut Value, path: &[Value]) -> &'v mut Map<String, Value> {
        let mut cur = v;
        for step in path {
            cur = match step {
                Value::String(k) => cur.get_mut(k.as_str()).unwrap(),
                Value::Number(i) => cur.get_mut(i.as_u64().unwrap() as usize).unwrap(),
                _ => unreachable!("paths hold keys and indexes"),
            };
        }
        cur.as_object_mut().unwrap()
    }

    /// One mutation of `record`, as JSON text.
    fn mutate(record: &Value, rng: &mut Rng, odd: &[Value]) -> String {
        let mut v = record.clone();
        let mut slots = Vec::new();
        object_slots(&v, &mut Vec::new(), &mut slots);
        let edits = 1 + rng.below(3);
        for _ in 0..edits {
            if slots.is_empty() {
                break;
            }
            let (path, key) = slots[rng.below(slots.len())].clone();
            let obj = object_at(&mut v, &path);
            if !obj.contains_key(&key) {
                continue;
            }
            match rng.below(6) {
                0 => {
                    obj.remove(&key);
                }
                1 => {
                    let value = obj.remove(&key).unwrap_or(Value::Null);
                    let mut chars = key.chars();
                    let recased = match chars.next() {
                        Some(c) if c.is_ascii_lowercase() => {
                            c.to_ascii_uppercase().to_string() + chars.as_str()
                        }
                        _ => key.to_ascii_lowercase(),
                    };
                    obj.insert(recased, value);
                }
                _ => {
                    obj.insert(key, odd[rng.below(odd.len())].clone());
                }
            }
            slots.clear();
            object_slots(&v, &mut Vec::new(), &mut slots);
        }
        let text = v.to_string();
        // Mutations a `Value` cannot hold: a repeated key, numbers and escapes JSON refuses.
        match rng.below(12) {
            0 if text.starts_with("{\"") => {
                let first_key_end = text[2..].find('"').map(|i| i + 2).unwrap_or(1);
                let key = &text[1..=first_key_end];
                format!("{{{key}:\"again\",{}", &text[1..])
            }
            1 => format!("{{\"zz\":1e400,{}", &text[1..]),
            2 => format!("{{\"zz\":\"\\ud800\",{}", &text[1..]),
            3 => format!("{{\"zz\":[1,2,],{}", &text[1..]),
            _ => text,
        }
    }

    fn records_of(path: &str) -> Vec<Value> {
        let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
        let mut out = Vec::new();
        for_each_json_record(&bytes, &mut |raw| {
            if let Ok(v) = serde_json::from_slice::<Value>(raw) {
                out.push(v);
            }
        });
        out
    }

    #[test]
    fn mutated_records_read_the_same_both_ways() {
        let odd = odd_values();
        let mut rng = Rng(7);
        let sources = [
            "tests/fixtures/real/entra-docs/eventhub_signinlogs_record.json",
            "tests/fixtures/real/datadog-integrations-core/azure_activedirectory_eventhub_records.jsonl",
            "tests/fixtures/real/msgraph-docs/beta_signin_get.json",
            "tests/fixtures/real/msgraph-docs/beta_signins_list_ex1_failed_password.json",
            "tests/fixtures/real/msgraph-docs/beta_directoryaudit_get_mfa_method_update.json",
            "tests/fixtures/real/msgraph-docs/v1_directoryaudits_list.json",
            "tests/fixtures/derived/eventhub_envelope_auditlogs.json",
            "tests/fixtures/quirks/eh_audit_roles_string.json",
            "tests/fixtures/quirks/graph_signin_casing.json",
        ];
        let mut checked = 0;
        for source in sources {
            let records = records_of(source);
            assert!(!records.is_empty(), "{source}");
            for record in &records {
                for _ in 0..150 {
                    let text = mutate(record, &mut rng, &odd);
                    for hint in [None, Some(TENANT)] {
                        assert_same(text.as_bytes(), hint);
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked >= 2000, "checked {checked}");
    }

    #[test]
    fn graph_pages_keep_their_hint_both_ways() {
        for context in [
            "auditLogs/signIns",
            "auditLogs/directoryAudits",
            "identityProtection/riskDetections",
        ] {
            let page = format!(
                "{{\"@odata.context\":\"https://graph.microsoft.com/beta/$metadata#{context}\",\"value\":[{},{}]}}",
                json!({"id": "a", "createdDateTime": "2021-01-01T00:00:00Z", "userId": "u", "activityDisplayName": "x"}),
                json!({"id": "b", "activityDateTime": "2021-01-01T00:00:00Z", "status": {"errorCode": 0}})
            );
            assert_same(page.as_bytes(), Some(TENANT));
        }
    }

    #[test]
    fn events_read_share_the_text_of_few_values_and_count_what_they_hold() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/real/datadog-integrations-core/azure_activedirectory_eventhub_records.jsonl");
        let mut events = Vec::new();
        read_file(&path, &ReadOptions::default(), &mut |item| {
            if let Item::Event(e) = item {
                events.push(e);
            }
        })
        .unwrap();
        let sign_in = events
            .iter()
            .find_map(|e| {
                e.as_sign_in()
                    .filter(|s| s.user_agent.as_ref().is_some_and(|a| a.len() > 24))
            })
            .expect("a sign-in with a long user agent");
        let (user_id, agent) = (
            sign_in.user_id.as_ref().unwrap(),
            sign_in.user_agent.as_ref().unwrap(),
        );
        assert!(
            user_id.is_shared() && agent.is_shared(),
            "{user_id} {agent}"
        );
        assert_eq!(sign_in.user_agent, Some(crate::Text::shared(agent)));
        let (mut sign_ins, mut held, mut held_copies) = (0, 0, 0);
        for event in &events {
            // The same event, its text copied the ordinary way: equal, and holding more (for
            // other kinds, text made from an owned string may keep that string's spare room).
            let copy: Event = serde_json::from_str(&serde_json::to_string(event).unwrap()).unwrap();
            assert_eq!(format!("{copy:?}"), format!("{event:?}"));
            assert!(event.held_bytes() > std::mem::size_of::<Event>());
            if event.as_sign_in().is_some() {
                assert!(copy.held_bytes() > event.held_bytes());
                sign_ins += 1;
            }
            held += event.held_bytes();
            held_copies += copy.held_bytes();
        }
        assert!(sign_ins >= 1, "{sign_ins}");
        assert!(held < held_copies, "{held} {held_copies}");
    }
}
