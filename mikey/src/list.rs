//! Lists of small fixed-layout items inside a payload (SRTP-ID map entries RFC 3830 §6.1.1,
//! GENERIC-ID entries RFC 6043 §6.1.1, SP parameters RFC 3830 §6.10, Key ID sub-payloads
//! RFC 4563 §4).
//!
//! A list is either a borrowed, already validated stretch of wire bytes (what the parser hands
//! out) or a borrowed slice of items (what a builder passes in). Both compare equal when they
//! hold the same items, so `parse(build(x)) == x` can be checked directly.

use crate::Error;
use crate::codec::{Reader, Writer};

/// One item of a list: how it is read from and written to the wire.
pub(crate) trait WireItem<'a>: Sized + Copy {
    fn decode(r: &mut Reader<'a>) -> Result<Self, Error>;
    fn encoded_len(&self) -> usize;
    fn encode(&self, w: &mut Writer<'_>) -> Result<(), Error>;
}

macro_rules! wire_list {
    ($(#[$meta:meta])* $lt:lifetime, $name:ident, $iter:ident, $item:ty) => {
        $(#[$meta])*
        #[derive(Clone, Copy)]
        pub struct $name<$lt>(crate::list::Repr<$lt, $item>);

        impl<$lt> $name<$lt> {
            /// A list made of these items (for building).
            pub const fn from_items(items: &$lt [$item]) -> Self {
                $name(crate::list::Repr::Items(items))
            }

            /// An empty list.
            pub const fn empty() -> Self {
                $name(crate::list::Repr::Items(&[]))
            }

            /// The items, in wire order.
            pub fn iter(&self) -> $iter<$lt> {
                match self.0 {
                    crate::list::Repr::Wire { bytes, .. } => {
                        $iter { wire: crate::codec::Reader::new(bytes), items: [].iter() }
                    }
                    crate::list::Repr::Items(items) => {
                        $iter { wire: crate::codec::Reader::new(&[]), items: items.iter() }
                    }
                }
            }

            /// Number of items.
            pub fn len(&self) -> usize {
                match self.0 {
                    crate::list::Repr::Wire { count, .. } => count,
                    crate::list::Repr::Items(items) => items.len(),
                }
            }

            /// True when the list has no items.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Length of the items on the wire.
            pub fn encoded_len(&self) -> usize {
                match self.0 {
                    crate::list::Repr::Wire { bytes, .. } => bytes.len(),
                    crate::list::Repr::Items(items) => {
                        items.iter().map(|i| crate::list::WireItem::encoded_len(i)).sum()
                    }
                }
            }

            /// Reads exactly `count` items.
            #[allow(dead_code)]
            pub(crate) fn parse_counted(
                r: &mut crate::codec::Reader<$lt>,
                count: usize,
            ) -> Result<Self, crate::Error> {
                let mut probe = r.clone();
                let start = probe.pos();
                for _ in 0..count {
                    <$item as crate::list::WireItem>::decode(&mut probe)?;
                }
                let len = probe.pos() - start;
                let bytes = r.bytes(len)?;
                Ok($name(crate::list::Repr::Wire { bytes, count }))
            }

            /// Reads items until `bytes` is used up; an item that runs past the end is an error.
            #[allow(dead_code)]
            pub(crate) fn parse_exact(bytes: &$lt [u8]) -> Result<Self, crate::Error> {
                let mut r = crate::codec::Reader::new(bytes);
                let mut count = 0usize;
                while !r.is_empty() {
                    <$item as crate::list::WireItem>::decode(&mut r)
                        .map_err(|_| crate::Error::LengthMismatch)?;
                    count += 1;
                }
                Ok($name(crate::list::Repr::Wire { bytes, count }))
            }

            pub(crate) fn encode(&self, w: &mut crate::codec::Writer<'_>) -> Result<(), crate::Error> {
                match self.0 {
                    crate::list::Repr::Wire { bytes, .. } => w.bytes(bytes),
                    crate::list::Repr::Items(items) => {
                        for i in items {
                            crate::list::WireItem::encode(i, w)?;
                        }
                        Ok(())
                    }
                }
            }
        }

        impl<$lt> PartialEq for $name<$lt> {
            fn eq(&self, other: &Self) -> bool {
                self.iter().eq(other.iter())
            }
        }

        impl<$lt> Eq for $name<$lt> {}

        impl<$lt> core::fmt::Debug for $name<$lt> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.debug_list().entries(self.iter()).finish()
            }
        }

        /// Iterator over the items of a list.
        #[derive(Clone)]
        pub struct $iter<$lt> {
            wire: crate::codec::Reader<$lt>,
            items: core::slice::Iter<$lt, $item>,
        }

        impl<$lt> Iterator for $iter<$lt> {
            type Item = $item;

            fn next(&mut self) -> Option<$item> {
                if let Some(i) = self.items.next() {
                    return Some(*i);
                }
                if self.wire.is_empty() {
                    return None;
                }
                // Wire lists were validated when parsed, so decoding cannot fail here; stop
                // cleanly if it ever did.
                match <$item as crate::list::WireItem>::decode(&mut self.wire) {
                    Ok(i) => Some(i),
                    Err(_) => {
                        let _ = self.wire.rest();
                        None
                    }
                }
            }
        }

        impl<$lt> IntoIterator for &$name<$lt> {
            type Item = $item;
            type IntoIter = $iter<$lt>;

            fn into_iter(self) -> $iter<$lt> {
                self.iter()
            }
        }
    };
}

pub(crate) use wire_list;

/// Storage of a list: validated wire bytes, or caller items.
#[derive(Clone, Copy)]
pub(crate) enum Repr<'a, T> {
    Wire { bytes: &'a [u8], count: usize },
    Items(&'a [T]),
}
