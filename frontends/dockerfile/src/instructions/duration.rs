//! Go-style durations (`1m30s`, `1.5h`, `500ms`) as used by HEALTHCHECK flags.
//!
//! This module owns only the duration grammar of Go's `time.ParseDuration`:
//! an optional sign, then one or more `<decimal><unit>` parts with units
//! `ns`, `us`/`µs`/`μs`, `ms`, `s`, `m`, `h`; a bare `0` is allowed.

/// Parses a Go duration into signed nanoseconds; `None` when malformed or out of range.
pub fn parse_go_duration(input: &str) -> Option<i128> {
    let (negative, mut rest) = match input.as_bytes().first() {
        Some(b'-') => (true, &input[1..]),
        Some(b'+') => (false, &input[1..]),
        _ => (false, input),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let (nanos, after) = parse_component(rest)?;
        total = total.checked_add(nanos)?;
        rest = after;
    }
    if total > i128::from(i64::MAX) {
        return None;
    }
    Some(if negative { -total } else { total })
}

/// Parses one `<decimal><unit>` part; returns its nanoseconds and the remaining text.
fn parse_component(text: &str) -> Option<(i128, &str)> {
    let int_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (int_part, rest) = text.split_at(int_end);
    let (frac_part, rest) = match rest.strip_prefix('.') {
        Some(after_dot) => {
            let frac_end = after_dot
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after_dot.len());
            after_dot.split_at(frac_end)
        }
        None => ("", rest),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let unit_end = rest
        .find(|c: char| c == '.' || c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (unit, rest) = rest.split_at(unit_end);
    let scale = unit_nanos(unit)?;
    let whole: i128 = if int_part.is_empty() {
        0
    } else {
        int_part.parse::<i128>().ok()?
    };
    let mut nanos = whole.checked_mul(scale)?;
    let mut place = scale;
    for digit in frac_part.bytes().take(30) {
        place /= 10;
        nanos += i128::from(digit - b'0') * place;
    }
    Some((nanos, rest))
}

fn unit_nanos(unit: &str) -> Option<i128> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("50ns"), Some(50));
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_go_duration(".5ms"), Some(500_000));
        assert_eq!(parse_go_duration("-1s"), Some(-1_000_000_000));
        assert_eq!(parse_go_duration("5"), None);
        assert_eq!(parse_go_duration("s"), None);
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("1x"), None);
    }
}
