//! XML bodies through serde (quick-xml): the document writer every module uses, and the reader of
//! the Ub and Zn documents (TS 24.109 Annex C, Zn), which checks the root element and its namespace.

use serde::{Deserialize, Serialize};

use crate::Error;

/// The XML declaration every document starts with.
pub(crate) const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// The document of `value`, indented by two, after [`XML_DECLARATION`]; the root element is `root`,
/// or the serde name of the value's type. Empty if it cannot be written (structs of strings always
/// can).
pub(crate) fn to_document<T: Serialize>(root: Option<&str>, value: &T) -> String {
    let mut body = String::new();
    let Ok(mut ser) = quick_xml::se::Serializer::with_root(&mut body, root) else {
        return String::new();
    };
    ser.indent(' ', 2);
    match value.serialize(ser) {
        Ok(_) => format!("{XML_DECLARATION}{body}\n"),
        Err(_) => String::new(),
    }
}

/// The document of `value`, its root element named by serde.
pub(crate) fn to_xml<T: Serialize>(value: &T) -> String {
    to_document(None, value)
}

/// Checks the root element's local name and its default namespace (absent is accepted), then
/// deserializes. Prefixed element names are not supported.
pub(crate) fn from_xml<T: for<'de> Deserialize<'de>>(
    xml: &str,
    root: &str,
    namespace: &str,
) -> Result<T, Error> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Err(e) => return Err(Error::XmlBody(e.to_string())),
            Ok(Event::Eof) => return Err(Error::XmlBody("no root element".into())),
            Ok(Event::Start(e) | Event::Empty(e)) => {
                let qname = e.name();
                let name: &str = qname.as_ref();
                if name != root {
                    return Err(Error::XmlBody(format!("root element is <{name}>, expected <{root}>")));
                }
                for attr in e.attributes() {
                    let attr = attr.map_err(|e| Error::XmlBody(e.to_string()))?;
                    let key: &str = attr.key.as_ref();
                    let value: &str = &attr.value;
                    if key == "xmlns" && value != namespace {
                        return Err(Error::XmlBody(format!("namespace `{value}`, expected `{namespace}`")));
                    }
                }
                break;
            }
            Ok(Event::DocType(_)) => return Err(Error::XmlBody("DOCTYPE is not accepted".into())),
            Ok(_) => {}
        }
    }
    quick_xml::de::from_str(xml).map_err(|e| Error::XmlBody(e.to_string()))
}
