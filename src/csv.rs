//! CSV in this tool's dialect, written by hand: a header row, CRLF line ends, floats
//! in positional notation with the shortest digits that read back as the same float
//! (Rust's `{}`), ISO dates, empty cells for nulls, and a field quoted only when it
//! holds a comma, a quote, CR or LF (quotes doubled) or is an empty string (`""`,
//! so it is not read as null).
//!
//! It writes exactly the bytes polars' `CsvWriter` writes with these options (a test
//! compares the two on every type it handles), in about a third of the time: polars
//! formats each float through `core::fmt`, which was a quarter of the run's output
//! stage; here zmij finds the digits (`push_f64`). A frame with a column of any other type is left to polars (`write` says so).

use std::io::Write;

use chrono::NaiveDate;
use polars::prelude::*;
use polars_arrow::array::{Array, BooleanArray, PrimitiveArray, Utf8ViewArray};

/// Bytes buffered before they go to the writer.
const FLUSH_AT: usize = 1 << 16;

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// One column's values, typed.
enum Cells<'a> {
    Str(&'a Utf8ViewArray),
    F64(&'a PrimitiveArray<f64>),
    F32(&'a PrimitiveArray<f32>),
    I64(&'a PrimitiveArray<i64>),
    I32(&'a PrimitiveArray<i32>),
    I16(&'a PrimitiveArray<i16>),
    I8(&'a PrimitiveArray<i8>),
    U64(&'a PrimitiveArray<u64>),
    U32(&'a PrimitiveArray<u32>),
    U16(&'a PrimitiveArray<u16>),
    U8(&'a PrimitiveArray<u8>),
    Bool(&'a BooleanArray),
    /// Days since the epoch; the last one formatted is kept (dates repeat).
    Date(&'a PrimitiveArray<i32>, Option<(i32, String)>),
}

impl<'a> Cells<'a> {
    /// The cells of a single-chunk column, or `None` for a type written by polars.
    fn of(column: &'a Series) -> Option<Cells<'a>> {
        let chunks = column.chunks();
        if chunks.len() != 1 {
            return None;
        }
        let array: &dyn Array = chunks[0].as_ref();
        fn down<T: 'static>(a: &dyn Array) -> Option<&T> {
            a.as_any().downcast_ref::<T>()
        }
        Some(match column.dtype() {
            DataType::String => Cells::Str(down(array)?),
            DataType::Float64 => Cells::F64(down(array)?),
            DataType::Float32 => Cells::F32(down(array)?),
            DataType::Int64 => Cells::I64(down(array)?),
            DataType::Int32 => Cells::I32(down(array)?),
            DataType::Int16 => Cells::I16(down(array)?),
            DataType::Int8 => Cells::I8(down(array)?),
            DataType::UInt64 => Cells::U64(down(array)?),
            DataType::UInt32 => Cells::U32(down(array)?),
            DataType::UInt16 => Cells::U16(down(array)?),
            DataType::UInt8 => Cells::U8(down(array)?),
            DataType::Boolean => Cells::Bool(down(array)?),
            DataType::Date => {
                let days: &PrimitiveArray<i32> = down(array)?;
                // A date chrono cannot hold: polars' writer decides what to do.
                if days.values_iter().any(|&d| date_of(d).is_none()) {
                    return None;
                }
                Cells::Date(days, None)
            }
            _ => return None,
        })
    }

    /// Appends the cell of `row` (not null).
    fn push(&mut self, row: usize, buf: &mut Vec<u8>) {
        match self {
            Cells::Str(a) => push_str(buf, a.value(row)),
            Cells::F64(a) => push_f64(buf, a.value(row)),
            Cells::F32(a) => push_f64(buf, f64::from(a.value(row))),
            Cells::I64(a) => push_int(buf, a.value(row)),
            Cells::I32(a) => push_int(buf, a.value(row)),
            Cells::I16(a) => push_int(buf, a.value(row)),
            Cells::I8(a) => push_int(buf, a.value(row)),
            Cells::U64(a) => push_int(buf, a.value(row)),
            Cells::U32(a) => push_int(buf, a.value(row)),
            Cells::U16(a) => push_int(buf, a.value(row)),
            Cells::U8(a) => push_int(buf, a.value(row)),
            Cells::Bool(a) => {
                let text: &[u8] = if a.value(row) { b"true" } else { b"false" };
                buf.extend_from_slice(text);
            }
            Cells::Date(a, last) => {
                let day = a.value(row);
                if last.as_ref().is_none_or(|(d, _)| *d != day) {
                    let text = date_of(day).map(|d| d.to_string()).unwrap_or_default();
                    *last = Some((day, text));
                }
                if let Some((_, text)) = last {
                    buf.extend_from_slice(text.as_bytes());
                }
            }
        }
    }
}

fn push_int(buf: &mut Vec<u8>, v: impl itoa::Integer) {
    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

fn date_of(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(EPOCH_DAYS_FROM_CE)?)
}

/// Writes `df` with its header; `Ok(false)` (nothing written) when a column's type
/// is not one this writer handles.
pub fn write(df: &DataFrame, w: &mut impl Write) -> std::io::Result<bool> {
    let columns: Vec<Series> = df
        .columns()
        .iter()
        .map(|c| c.as_materialized_series().rechunk())
        .collect();
    // Each column's cells, with its array for the null bits.
    let Some(mut cells) = columns
        .iter()
        .map(|c| Some((c.chunks().first()?.as_ref(), Cells::of(c)?)))
        .collect::<Option<Vec<(&dyn Array, Cells)>>>()
    else {
        return Ok(false);
    };
    let mut buf = Vec::with_capacity(FLUSH_AT + 1024);
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        push_str(&mut buf, c.name());
    }
    buf.extend_from_slice(b"\r\n");
    for row in 0..df.height() {
        for (i, (array, c)) in cells.iter_mut().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            if !array.is_null(row) {
                c.push(row, &mut buf);
            }
        }
        buf.extend_from_slice(b"\r\n");
        if buf.len() >= FLUSH_AT {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)?;
    Ok(true)
}

/// A string field, quoted where needed (polars' `QuoteStyle::Necessary`).
fn push_str(buf: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        buf.extend_from_slice(b"\"\"");
        return;
    }
    let special = |c: &u8| matches!(c, b',' | b'"' | b'\r' | b'\n');
    if !bytes.iter().any(special) {
        buf.extend_from_slice(bytes);
        return;
    }
    buf.push(b'"');
    for &c in bytes {
        if c == b'"' {
            buf.push(b'"');
        }
        buf.push(c);
    }
    buf.push(b'"');
}

/// A float as Rust's `{}` writes it: the shortest digits that read back as the same
/// float (ryu finds them), placed positionally, never in exponent notation.
fn push_f64(buf: &mut Vec<u8>, v: f64) {
    if !v.is_finite() {
        let text: &[u8] = if v.is_nan() {
            b"NaN"
        } else if v > 0.0 {
            b"inf"
        } else {
            b"-inf"
        };
        buf.extend_from_slice(text);
        return;
    }
    // A whole number below 2^53 (counts, points, zeros: most cells of the tables) is
    // its integer's digits (`tie_possible` has why), and -0 keeps its sign.
    if v.trunc() == v && v.abs() < EXACT_INTEGERS {
        if v == 0.0 && v.is_sign_negative() {
            buf.extend_from_slice(b"-0");
        } else {
            push_int(buf, v as i64);
        }
        return;
    }
    if tie_possible(v) {
        // (Writing to a Vec cannot fail.)
        let _ = write!(buf, "{v}");
        return;
    }
    let mut zmij = zmij::Buffer::new();
    let text = zmij.format_finite(v).as_bytes();
    // Without an exponent, zmij's text is already Rust's: the shortest digits, placed
    // (whole numbers, whose `.0` Rust leaves off, took the integer path above).
    if !text.contains(&b'e') {
        buf.extend_from_slice(text);
        return;
    }
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let (mantissa, exponent) = match text.iter().position(|&c| c == b'e') {
        Some(e) => (&text[..e], parse_exponent(&text[e + 1..])),
        None => (text, 0),
    };
    // The digits, and where the decimal point falls among them.
    let mut digits = [0u8; 32];
    let mut len = 0;
    let mut point = mantissa.len() as i32;
    for &c in mantissa {
        if c == b'.' {
            point = len as i32;
        } else {
            digits[len] = c;
            len += 1;
        }
    }
    point += exponent;
    let mut first = 0;
    while len - first > 1 && digits[first] == b'0' {
        first += 1;
        point -= 1;
    }
    while len - first > 1 && digits[len - 1] == b'0' {
        len -= 1;
    }
    let digits = &digits[first..len];
    if negative {
        buf.push(b'-');
    }
    if digits == b"0" {
        buf.push(b'0');
    } else if point <= 0 {
        buf.extend_from_slice(b"0.");
        buf.resize(buf.len() + (-point) as usize, b'0');
        buf.extend_from_slice(digits);
    } else if point as usize >= digits.len() {
        buf.extend_from_slice(digits);
        buf.resize(buf.len() + point as usize - digits.len(), b'0');
    } else {
        let (whole, fraction) = digits.split_at(point as usize);
        buf.extend_from_slice(whole);
        buf.push(b'.');
        buf.extend_from_slice(fraction);
    }
}

/// 2^53: below it every whole float's shortest digits are all of its digits (the
/// integer path of `push_f64`, and no tie in `tie_possible`).
const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0;

/// Whether two shortest digit strings could be equally close to `v`: only when its
/// exact decimal expansion is short (at most one digit longer than the shortest
/// string, which has at most 17). On such a tie Rust rounds up and zmij to even, so
/// these few values (x.5, x.25, integers from 2^53...) are written by Rust itself.
/// Deliberately generous: 19 digits, not 18.
fn tie_possible(v: f64) -> bool {
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mut mantissa, mut exponent) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), biased - 1075)
    };
    if mantissa == 0 {
        return false;
    }
    let zeros = mantissa.trailing_zeros();
    mantissa >>= zeros;
    exponent += zeros as i32;
    if exponent >= 0 {
        // An integer: below 2^53 its shortest digits are all of its digits.
        return v.abs() >= EXACT_INTEGERS;
    }
    // v = mantissa / 2^k = mantissa * 5^k / 10^k, and mantissa * 5^k is not a
    // multiple of 10 (mantissa is odd): its digits are v's significant digits.
    let k = exponent.unsigned_abs();
    k <= 27 && u128::from(mantissa) * 5u128.pow(k) < 10u128.pow(19)
}

fn parse_exponent(text: &[u8]) -> i32 {
    let (sign, digits) = match text.split_first() {
        Some((b'-', rest)) => (-1, rest),
        Some((b'+', rest)) => (1, rest),
        _ => (1, text),
    };
    sign * digits
        .iter()
        .fold(0i32, |n, &d| n * 10 + i32::from(d - b'0'))
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    fn display(v: f64) -> String {
        let mut buf = Vec::new();
        push_f64(&mut buf, v);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn floats_read_like_rusts_display() {
        let specials = [
            0.0,
            -0.0,
            1.0,
            -1.5,
            0.1,
            1e-7,
            1.2345e-5,
            123.456,
            1e15,
            1e16,
            1.2345e20,
            1e21,
            1e22,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            13.513513513513514,
            0.20945324700231482,
            // An exact tie between two shortest strings (...26.62 and ...26.63).
            f64::from_bits(0x42E4_37C7_FE3B_6CD4), // 177838488673126.625
            7.5,
            0.375,
            9_007_199_254_740_993.0,
            9_007_199_254_740_991.0,
            -9_007_199_254_740_991.0,
            9_007_199_254_740_992.0,
            4_503_599_627_370_495.0,
            -291.0,
            // Around zmij's switches between placed digits and an exponent.
            0.00001,
            0.000015,
            0.0000099,
            -0.00012,
            123_456_789_012_345.6,
            1_234_567_890_123_456.8,
            4_503_599_627_370_495.5,
            9.5e15,
            1.5e300,
        ];
        for v in specials {
            assert_eq!(display(v), format!("{v}"), "{v:e}");
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        // (30M values of these kinds matched once; the test keeps a few.)
        for _ in 0..100_000 {
            // Any bit pattern, the kind of values the tables hold, and values with
            // short exact expansions, where ties between shortest strings happen.
            let bits = f64::from_bits(rng.gen());
            let ratio = rng.gen_range(0..100_000) as f64 / rng.gen_range(1..1_000) as f64;
            let binary = rng.gen_range(0..1i64 << 40) as f64 / 2f64.powi(rng.gen_range(0..60));
            let decimal = rng.gen_range(0..1i64 << 50) as f64 / 10f64.powi(rng.gen_range(0..25));
            let whole =
                rng.gen_range(-(1i64 << 54)..1i64 << 54) as f64 / 2f64.powi(rng.gen_range(0..40));
            for v in [
                bits,
                ratio,
                -ratio / 7.0,
                binary,
                binary * 1e15,
                decimal,
                whole,
                whole.trunc(),
            ] {
                assert_eq!(display(v), format!("{v}"), "{v:e}");
            }
        }
    }

    /// Polars' CSV writer with the options this tool uses everywhere.
    fn polars_csv(df: &mut DataFrame) -> Vec<u8> {
        let mut out = Vec::new();
        CsvWriter::new(&mut out)
            .include_header(true)
            .with_separator(b',')
            .with_line_terminator("\r\n".into())
            .with_float_scientific(Some(false))
            .with_null_value("".into())
            .finish(df)
            .unwrap();
        out
    }

    #[test]
    fn writes_what_polars_writes() {
        let mut df = df!(
            "text" => [Some("plain"), Some(""), None, Some("a,b"), Some("say \"hi\""), Some("two\nlines"), Some("cr\r"), Some("ünï")],
            "f64" => [Some(0.1), None, Some(-0.0), Some(1e-7), Some(1e21), Some(f64::NAN), Some(f64::INFINITY), Some(2.5)],
            "f32" => [Some(0.1f32), None, Some(3.0), Some(-1e-8), Some(7.25), Some(1e10), Some(0.0), Some(1.5)],
            "i64" => [Some(i64::MIN), None, Some(0), Some(-1), Some(i64::MAX), Some(42), Some(7), Some(8)],
            "i32" => [Some(i32::MIN), Some(1), None, Some(-1), Some(i32::MAX), Some(42), Some(7), Some(8)],
            "i16" => [Some(i16::MIN), Some(1), None, Some(-1), Some(i16::MAX), Some(42), Some(7), Some(8)],
            "i8" => [Some(i8::MIN), Some(1), None, Some(-1), Some(i8::MAX), Some(42), Some(7), Some(8)],
            "u64" => [Some(u64::MAX), Some(1), None, Some(0), Some(5), Some(42), Some(7), Some(8)],
            "u32" => [Some(u32::MAX), Some(1), None, Some(0), Some(5), Some(42), Some(7), Some(8)],
            "u16" => [Some(u16::MAX), Some(1), None, Some(0), Some(5), Some(42), Some(7), Some(8)],
            "u8" => [Some(u8::MAX), Some(1), None, Some(0), Some(5), Some(42), Some(7), Some(8)],
            "flag" => [Some(true), Some(false), None, Some(true), Some(true), Some(false), None, Some(true)],
            "day" => [Some(20780), Some(20780), None, Some(-1), Some(0), Some(2_932_896), Some(-719_162), Some(20781)],
            "needs \"quoting\", too" => [1, 2, 3, 4, 5, 6, 7, 8],
        )
        .unwrap();
        df.apply("day", |c| c.cast(&DataType::Date).unwrap())
            .unwrap();
        let mut ours = Vec::new();
        assert!(write(&df, &mut ours).unwrap());
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(polars_csv(&mut df)).unwrap()
        );
        // Many rows (several flushes), several chunks per column.
        let n = 50_000;
        let mut big = df!(
            "x" => (0..n).map(|i| f64::from(i) / 7.0).collect::<Vec<_>>(),
            "s" => (0..n).map(|i| format!("org_{i:05}")).collect::<Vec<_>>(),
        )
        .unwrap();
        big.vstack_mut(&big.clone()).unwrap();
        let mut ours = Vec::new();
        assert!(write(&big, &mut ours).unwrap());
        assert!(ours == polars_csv(&mut big), "many rows differ");
    }

    #[test]
    fn other_types_are_left_to_polars() {
        let df = df!("t" => [1i64]).unwrap();
        let df = df
            .lazy()
            .with_column(col("t").cast(DataType::Datetime(TimeUnit::Microseconds, None)))
            .collect()
            .unwrap();
        let mut out = Vec::new();
        assert!(!write(&df, &mut out).unwrap());
        assert!(out.is_empty());
    }
}
