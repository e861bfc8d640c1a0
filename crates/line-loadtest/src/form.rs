//! Just enough HTML form reading to click through a consent page or a CSRF-protected form:
//! the form's action, its hidden inputs, one choice per radio group, and a named button.

/// A form to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// The `action` attribute (HTML-unescaped), possibly relative.
    pub action: String,
    /// Fields to send, in document order.
    pub fields: Vec<(String, String)>,
}

/// The attributes of one tag, lowercase names, HTML-unescaped values.
fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let bytes = tag.as_bytes();
    let mut i = 0;
    // skip the tag name
    while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        let start = i;
        while i < bytes.len()
            && !bytes[i].is_ascii_whitespace()
            && bytes[i] != b'='
            && bytes[i] != b'/'
        {
            i += 1;
        }
        if start == i {
            i += 1;
            continue;
        }
        let name = tag[start..i].to_ascii_lowercase();
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let quote = bytes[i];
                i += 1;
                let vstart = i;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
                value = unescape(&tag[vstart..i.min(tag.len())]);
                i += 1;
            } else {
                let vstart = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = unescape(&tag[vstart..i]);
            }
        }
        out.push((name, value));
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Iterates over the tags named `name` (`<name ...>`), giving the text inside the brackets.
fn tags<'a>(html: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let lower = html.to_ascii_lowercase();
    let needle = format!("<{name}");
    let mut positions = Vec::new();
    let mut from = 0;
    while let Some(p) = lower[from..].find(&needle) {
        let start = from + p + 1;
        let after = lower.as_bytes().get(start + name.len()).copied();
        let is_tag = matches!(after, Some(b) if b.is_ascii_whitespace() || b == b'>' || b == b'/');
        if let (true, Some(end)) = (is_tag, html[start..].find('>')) {
            positions.push((start, start + end));
        }
        from = start;
    }
    positions.into_iter().map(move |(s, e)| &html[s..e])
}

/// Reads the first form whose fields include one named `must_have` (or the first POST form
/// when `must_have` is `None`), choosing the first radio of each group (or the checked one)
/// and the button whose `id` is `button_id`, if given.
pub fn read_form(html: &str, must_have: Option<&str>, button_id: Option<&str>) -> Option<Form> {
    let lower = html.to_ascii_lowercase();
    let mut search_from = 0;
    while let Some(p) = lower[search_from..].find("<form") {
        let start = search_from + p;
        let end = lower[start..]
            .find("</form>")
            .map(|e| start + e)
            .unwrap_or(html.len());
        let body = &html[start..end];
        search_from = end.max(start + 5);
        let form_tag = tags(body, "form").next()?;
        let form_attrs = attributes(form_tag);
        let action = attr(&form_attrs, "action").unwrap_or("").to_owned();
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut radios_done: Vec<String> = Vec::new();
        for tag in tags(body, "input") {
            let a = attributes(tag);
            let Some(name) = attr(&a, "name") else {
                continue;
            };
            let value = attr(&a, "value").unwrap_or("").to_owned();
            match attr(&a, "type").map(str::to_ascii_lowercase).as_deref() {
                Some("radio") => {
                    let checked = a.iter().any(|(k, _)| k == "checked");
                    if checked {
                        fields.retain(|(n, _)| n != name);
                        fields.push((name.to_owned(), value));
                        radios_done.push(name.to_owned());
                    } else if !radios_done.iter().any(|r| r == name)
                        && !fields.iter().any(|(n, _)| n == name)
                    {
                        fields.push((name.to_owned(), value));
                    }
                }
                Some("checkbox") => {
                    if a.iter().any(|(k, _)| k == "checked") {
                        fields.push((name.to_owned(), value));
                    }
                }
                Some("submit") | Some("button") | Some("image") | Some("reset") => {}
                _ => fields.push((name.to_owned(), value)),
            }
        }
        if let Some(id) = button_id {
            for tag in tags(body, "button").chain(tags(body, "input")) {
                let a = attributes(tag);
                if let (true, Some(name)) = (attr(&a, "id") == Some(id), attr(&a, "name")) {
                    fields.push((name.to_owned(), attr(&a, "value").unwrap_or("").to_owned()));
                }
            }
        }
        let has_required = must_have.is_none_or(|m| fields.iter().any(|(n, _)| n == m));
        if has_required {
            return Some(Form { action, fields });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_consent_form() {
        let html = r#"<html><form method="post" action="/oauth2/v2.1/authorize/consent?x=1&amp;y=2">
            <input type="hidden" name="csrf" value="a&quot;b">
            <label><input type="radio" name="user" value="U1"> One</label>
            <label><input type="radio" name="user" value="U2" checked> Two</label>
            <input type="checkbox" name="add_friend" value="1">
            <button type="submit" id="allow" name="decision" value="allow">Allow</button>
            <button type="submit" id="cancel" name="decision" value="cancel">Cancel</button>
        </form></html>"#;
        let f = read_form(html, Some("user"), Some("allow")).unwrap();
        assert_eq!(f.action, "/oauth2/v2.1/authorize/consent?x=1&y=2");
        assert_eq!(
            f.fields,
            vec![
                ("csrf".to_owned(), "a\"b".to_owned()),
                ("user".to_owned(), "U2".to_owned()),
                ("decision".to_owned(), "allow".to_owned())
            ]
        );
    }

    #[test]
    fn picks_the_form_with_the_field() {
        let html = r#"<form action="/search"><input name="q"></form>
            <form method=post action=/logout><input type=hidden name=csrf_token value=T1></form>"#;
        let f = read_form(html, Some("csrf_token"), None).unwrap();
        assert_eq!(f.action, "/logout");
        assert_eq!(f.fields, vec![("csrf_token".to_owned(), "T1".to_owned())]);
        assert!(read_form("<p>no form</p>", None, None).is_none());
    }
}
