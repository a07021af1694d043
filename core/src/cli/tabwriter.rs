//! Go's `text/tabwriter` as docker configures it for its tables
//! (`tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`): cells end at tabs, a
//! column is as wide as its widest cell plus 3 spaces and at least 10,
//! the last cell of a line is not padded, and columns are aligned per
//! block of consecutive lines that have them (a line without a tab ends
//! every block). `docker top` sets a wider minimum ([`align_min`]).

const MIN_WIDTH: usize = 10;
const PADDING: usize = 3;

/// Aligns `text` as docker's tables are aligned.
pub fn align(text: &str) -> String {
    align_min(text, MIN_WIDTH)
}

/// Aligns `text` with columns at least `min_width` wide.
pub fn align_min(text: &str, min_width: usize) -> String {
    let mut out = String::new();
    let mut block: Vec<Vec<&str>> = Vec::new();
    let body = text.strip_suffix('\n').unwrap_or(text);
    for line in body.split('\n') {
        let cells: Vec<&str> = line.split('\t').collect();
        let single = cells.len() == 1;
        block.push(cells);
        if single {
            format(&block, 0, block.len(), min_width, &mut Vec::new(), &mut out);
            block.clear();
        }
    }
    format(&block, 0, block.len(), min_width, &mut Vec::new(), &mut out);
    if !text.ends_with('\n') && out.ends_with('\n') {
        out.pop();
    }
    out
}

fn width(cell: &str) -> usize {
    cell.chars().count()
}

/// Go's `Writer.format`: finds the blocks of lines that have a cell in
/// column `widths.len()`, sizes that column per block, recurses for the
/// next one.
fn format(lines: &[Vec<&str>], mut line0: usize, line1: usize, min_width: usize, widths: &mut Vec<usize>, out: &mut String) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut w = min_width;
        while this < line1 && column + 1 < lines[this].len() {
            w = w.max(width(lines[this][column]) + PADDING);
            this += 1;
        }
        widths.push(w);
        format(lines, line0, this, min_width, widths, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, line0, line1, widths, out);
}

fn write_lines(lines: &[Vec<&str>], from: usize, to: usize, widths: &[usize], out: &mut String) {
    for line in &lines[from..to] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if let Some(w) = widths.get(j) {
                out.extend(std::iter::repeat_n(' ', w.saturating_sub(width(cell))));
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_as_gos_tabwriter() {
        assert_eq!(
            align("CONTAINER ID\tNAMES\n7e8daae1ed4b\tlongername_here\n"),
            "CONTAINER ID   NAMES\n7e8daae1ed4b   longername_here\n"
        );
        assert_eq!(align("A\tB\tC\nxx\t\tz\n"), "A         B         C\nxx                  z\n");
        // A line without tabs ends the block: the next lines align anew.
        assert_eq!(
            align("long-cell-here\tx\nplain\na\tb\n"),
            "long-cell-here   x\nplain\na         b\n"
        );
        assert_eq!(align("…é\tx"), "…é        x");
        assert_eq!(
            align_min("PID\tCMD\n1\tsh\n", 20),
            format!("PID{}CMD\n1{}sh\n", " ".repeat(17), " ".repeat(19))
        );
        assert_eq!(align(""), "");
    }
}
