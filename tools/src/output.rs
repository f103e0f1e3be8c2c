//! Output helpers shared by commands: restic-style text tables and JSON.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

/// A text table in restic's style: a header, a dashed rule, rows, a rule.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                // A cell may span lines (several paths); the widest line counts.
                let w = cell.lines().map(|l| l.chars().count()).max().unwrap_or(0);
                if i < widths.len() {
                    widths[i] = widths[i].max(w);
                }
            }
        }
        let line = |cells: &[&str]| -> String {
            let mut s = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    s.push_str(cell);
                } else {
                    s.push_str(&format!("{:<w$}  ", cell, w = widths[i]));
                }
            }
            s.trim_end().to_string()
        };
        let header = line(&self.headers.iter().map(String::as_str).collect::<Vec<_>>());
        let rule = "-".repeat(widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1));
        writeln!(out, "{header}")?;
        writeln!(out, "{rule}")?;
        for row in &self.rows {
            let split: Vec<Vec<&str>> = row.iter().map(|c| c.lines().collect()).collect();
            let height = split.iter().map(|l| l.len()).max().unwrap_or(1).max(1);
            for k in 0..height {
                let cells: Vec<&str> = split
                    .iter()
                    .map(|l| l.get(k).copied().unwrap_or(""))
                    .collect();
                writeln!(out, "{}", line(&cells))?;
            }
        }
        writeln!(out, "{rule}")
    }
}

/// Print a value as one line of JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Print a value as indented JSON (restic's `cat`).
pub fn print_json_pretty<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Format a byte count the way restic does (`1.234 MiB`).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.3} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_like_restic() {
        assert_eq!(format_bytes(12), "12 B");
        assert_eq!(format_bytes(2048), "2.000 KiB");
        assert_eq!(format_bytes(3 << 30), "3.000 GiB");
    }

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["ID", "Host"]);
        t.row(vec!["abc".into(), "h".into()]);
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s, "ID   Host\n---------\nabc  h\n---------\n");
    }
}
