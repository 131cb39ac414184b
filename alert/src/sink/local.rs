//! The local sinks: `jsonl` appends each alert record as one JSON line and fsyncs before it
//! reports delivered; `stdout` prints the same lines.

use std::io::Write;

use super::Message;
use super::classify::Outcome;

fn lines(msg: &Message<'_>) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::new();
    for alert in msg.alerts {
        serde_json::to_writer(&mut out, alert)?;
        out.push(b'\n');
    }
    Ok(out)
}

pub async fn write_jsonl(path: std::path::PathBuf, msg: &Message<'_>) -> Outcome {
    let bytes = match lines(msg) {
        Ok(b) => b,
        Err(e) => return Outcome::failed(false, format!("encode: {e}")),
    };
    let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        f.write_all(&bytes)?;
        f.sync_data()
    })
    .await;
    match written {
        Ok(Ok(())) => Outcome::delivered(None),
        Ok(Err(e)) => Outcome::failed(false, format!("write: {e}")),
        Err(e) => Outcome::failed(false, format!("write task: {e}")),
    }
}

pub fn print_stdout(msg: &Message<'_>) -> Outcome {
    let bytes = match lines(msg) {
        Ok(b) => b,
        Err(e) => return Outcome::failed(false, format!("encode: {e}")),
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(&bytes).and_then(|()| out.flush()) {
        Ok(()) => Outcome::delivered(None),
        Err(e) => Outcome::failed(false, format!("stdout: {e}")),
    }
}
