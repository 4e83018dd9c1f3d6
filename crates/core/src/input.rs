//! What every JSON input, an API request body or a file given to the CLI, must be: one object.
//! serde reads a struct from a JSON array too, field by field in the order they are declared,
//! which would make every input's positional array an undocumented second shape of it.

/// Why an input is not one JSON object.
#[derive(Debug, PartialEq, Eq)]
pub enum NotAnObject {
    /// Nothing but white space.
    Empty,
    /// Another JSON value (an array, a string), or not JSON at all.
    Other,
}

/// The JSON object `input` holds, without the UTF-8 byte-order mark Windows editors write
/// before it (JSON parsers refuse it), or why there is none. Whether the object is well formed
/// is for the parser to say.
pub fn json_object(input: &[u8]) -> Result<&[u8], NotAnObject> {
    let json = input.strip_prefix(b"\xef\xbb\xbf").unwrap_or(input);
    match json.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Err(NotAnObject::Empty),
        Some(b'{') => Ok(json),
        Some(_) => Err(NotAnObject::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_object_is_one_and_a_byte_order_mark_is_no_part_of_it() {
        assert_eq!(json_object(b" \r\n{\"a\": 1}"), Ok(&b" \r\n{\"a\": 1}"[..]));
        assert_eq!(json_object(b"\xef\xbb\xbf{}"), Ok(&b"{}"[..]));
        assert_eq!(json_object(b"{not json"), Ok(&b"{not json"[..]));
        for empty in [&b""[..], b" \n\t", b"\xef\xbb\xbf"] {
            assert_eq!(json_object(empty), Err(NotAnObject::Empty), "{empty:?}");
        }
        for other in [&b"[]"[..], b"[{}]", b"\"{}\"", b"null", b"x{"] {
            assert_eq!(json_object(other), Err(NotAnObject::Other), "{other:?}");
        }
    }
}
