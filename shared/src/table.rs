//! Human tables (the operator commands' `--output table`, the backtest and rule reports):
//! Markdown-style rows with padded columns, every cell escaped by the one [`cell`] so that
//! its text cannot end the cell or the row (a rule label may hold `|`).

use std::fmt;

/// A table with a header row.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: AsRef<str>>(header: impl IntoIterator<Item = S>) -> Self {
        Self {
            header: header.into_iter().map(|h| cell(h.as_ref())).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; each value is escaped with [`cell`]. Missing cells are left empty.
    pub fn row<D: fmt::Display>(&mut self, cells: impl IntoIterator<Item = D>) -> &mut Self {
        self.rows
            .push(cells.into_iter().map(|c| cell(&c.to_string())).collect());
        self
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }
}

/// One table cell's text: `\` and `|` escaped with a backslash, line breaks, tabs and other
/// control characters written as escapes (`\n`, `\t`, `\u{1b}`), so the cell stays one cell
/// on one line.
pub fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

impl fmt::Display for Table {
    /// `| a | b |` lines, the header first, then a `|---|---|` line, then the rows; columns
    /// padded to their widest cell.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let width = |i: usize| {
            self.rows
                .iter()
                .chain([&self.header])
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
                .max(3)
        };
        let widths: Vec<usize> = (0..columns).map(width).collect();
        let line = |f: &mut fmt::Formatter<'_>, cells: &[String]| -> fmt::Result {
            f.write_str("|")?;
            for (i, w) in widths.iter().enumerate() {
                let c = cells.get(i).map_or("", String::as_str);
                write!(f, " {c}{} |", " ".repeat(w - c.chars().count()))?;
            }
            f.write_str("\n")
        };
        line(f, &self.header)?;
        f.write_str("|")?;
        for w in &widths {
            write!(f, "{}|", "-".repeat(w + 2))?;
        }
        f.write_str("\n")?;
        for row in &self.rows {
            line(f, row)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_in_a_cell_is_escaped_and_keeps_the_columns() {
        let mut table = Table::new(["id", "label"]);
        table.row(["a", "velocity | daily"]);
        table.row(["b\nc", "back\\slash"]);
        let text = table.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(lines[2], "| a    | velocity \\| daily |");
        assert_eq!(lines[3], "| b\\nc | back\\\\slash       |");
        // Every line has the same number of unescaped separators: three.
        for line in &lines {
            let unescaped = line
                .char_indices()
                .filter(|&(i, c)| c == '|' && !escaped(line, i))
                .count();
            assert_eq!(unescaped, 3, "{line}");
        }
    }

    /// Whether the character at `i` follows an odd number of backslashes.
    fn escaped(line: &str, i: usize) -> bool {
        line[..i].chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(cell("a\tb\u{1b}"), "a\\tb\\u{1b}");
        assert_eq!(cell("plain"), "plain");
    }
}
