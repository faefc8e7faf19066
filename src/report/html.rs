//! HTML escaping: text and attribute values alike.

/// `s` with `&`, `<`, `>`, `"` and `'` as character references (any other
/// character, non-ASCII included, is written as it is: the pages are UTF-8).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_are_escaped_and_others_kept() {
        assert_eq!(
            esc(r#"<b>"Smith & Sons" 'Ltd'</b> Zürich 東京"#),
            "&lt;b&gt;&quot;Smith &amp; Sons&quot; &#39;Ltd&#39;&lt;/b&gt; Zürich 東京"
        );
    }
}
