//! Any PC/SC reader (PC/SC Workgroup specification part 5, pcsc-lite) as a [`Reader`], through the
//! `pcsc` crate: shared access, T=0 or T=1 as the card offers.

use std::ffi::{CStr, CString};

use pcsc::{Context, Disposition, Protocols, Scope, ShareMode};

use crate::{Error, Protocol, Reader, Result};

/// Which reader to use: by position in the PC/SC list, or by a substring of its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderSelector {
    /// The n-th reader (from 0) in the order PC/SC lists them.
    Index(usize),
    /// The first reader whose name contains this text.
    Name(String),
}

impl std::str::FromStr for ReaderSelector {
    type Err = std::convert::Infallible;

    /// All digits: an index; anything else: a name substring.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match s.parse::<usize>() {
            Ok(i) => ReaderSelector::Index(i),
            Err(_) => ReaderSelector::Name(s.to_owned()),
        })
    }
}

/// A reader as PC/SC reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderInfo {
    /// Position in the PC/SC list.
    pub index: usize,
    /// The reader's name.
    pub name: String,
    /// Whether a card is present.
    pub card_present: bool,
    /// The card's answer-to-reset, when a card is present.
    pub atr: Option<Vec<u8>>,
}

/// The readers PC/SC knows, with card presence and ATR.
pub fn list_readers() -> Result<Vec<ReaderInfo>> {
    let ctx = Context::establish(Scope::User).map_err(|e| Error::pcsc("SCardEstablishContext", "", e))?;
    let names = reader_names(&ctx)?;
    let mut states: Vec<_> =
        names.iter().map(|n| pcsc::ReaderState::new(n.clone(), pcsc::State::UNAWARE)).collect();
    if !states.is_empty() {
        ctx.get_status_change(std::time::Duration::ZERO, &mut states)
            .map_err(|e| Error::pcsc("SCardGetStatusChange", "", e))?;
    }
    Ok(states
        .iter()
        .enumerate()
        .map(|(index, s)| {
            let card_present = s.event_state().contains(pcsc::State::PRESENT);
            ReaderInfo {
                index,
                name: s.name().to_string_lossy().into_owned(),
                card_present,
                atr: card_present.then(|| s.atr().to_vec()),
            }
        })
        .collect())
}

fn reader_names(ctx: &Context) -> Result<Vec<CString>> {
    match ctx.list_readers_owned() {
        Ok(names) => Ok(names),
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(e) => Err(Error::pcsc("SCardListReaders", "", e)),
    }
}

/// A card in a PC/SC reader.
pub struct PcscReader {
    ctx: Context,
    reader: CString,
    name: String,
    card: Option<pcsc::Card>,
    protocol: Protocol,
    buffer: Vec<u8>,
}

impl PcscReader {
    /// Connect to the card in the reader `selector` names (shared mode, T=0 or T=1).
    pub fn open(selector: &ReaderSelector) -> Result<Self> {
        let ctx = Context::establish(Scope::User).map_err(|e| Error::pcsc("SCardEstablishContext", "", e))?;
        let names = reader_names(&ctx)?;
        if names.is_empty() {
            return Err(Error::NoReaders);
        }
        let available: Vec<String> = names.iter().map(|n| n.to_string_lossy().into_owned()).collect();
        let index = match selector {
            ReaderSelector::Index(i) if *i < names.len() => *i,
            ReaderSelector::Index(i) => return Err(Error::ReaderIndexOutOfRange { index: *i, available }),
            ReaderSelector::Name(wanted) => {
                available.iter().position(|n| n.contains(wanted.as_str())).ok_or_else(|| {
                    Error::NoSuchReader { wanted: wanted.clone(), available: available.clone() }
                })?
            }
        };
        let mut reader = PcscReader {
            ctx,
            reader: names[index].clone(),
            name: available[index].clone(),
            card: None,
            protocol: Protocol::T1,
            buffer: vec![0; pcsc::MAX_BUFFER_SIZE_EXTENDED],
        };
        reader.power_on()?;
        Ok(reader)
    }

    /// The PC/SC reader name.
    pub fn reader_name(&self) -> &CStr {
        &self.reader
    }

    fn connected(&self) -> Result<&pcsc::Card> {
        self.card.as_ref().ok_or_else(|| Error::NotPowered { reader: self.name.clone() })
    }

    fn atr(&self) -> Result<Vec<u8>> {
        let status =
            self.connected()?.status2_owned().map_err(|e| Error::pcsc("SCardStatus", &self.name, e))?;
        Ok(status.atr().to_vec())
    }

    fn note_protocol(&mut self, active: Option<pcsc::Protocol>) {
        self.protocol = match active {
            Some(pcsc::Protocol::T0) => Protocol::T0,
            _ => Protocol::T1,
        };
    }
}

impl Reader for PcscReader {
    fn name(&self) -> &str {
        &self.name
    }

    fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Connect (which powers the card), or power-cycle a card already connected.
    fn power_on(&mut self) -> Result<Vec<u8>> {
        let protocols = Protocols::T0 | Protocols::T1;
        match &mut self.card {
            Some(card) => card
                .reconnect(ShareMode::Shared, protocols, Disposition::UnpowerCard)
                .map_err(|e| Error::pcsc("SCardReconnect", &self.name, e))?,
            None => {
                let card = self
                    .ctx
                    .connect(&self.reader, ShareMode::Shared, protocols)
                    .map_err(|e| Error::pcsc("SCardConnect", &self.name, e))?;
                self.card = Some(card);
            }
        }
        let active = self.connected()?.status2_owned().ok().and_then(|s| s.protocol2());
        self.note_protocol(active);
        self.atr()
    }

    fn reset(&mut self) -> Result<Vec<u8>> {
        let Some(card) = &mut self.card else {
            return self.power_on();
        };
        card.reconnect(ShareMode::Shared, Protocols::T0 | Protocols::T1, Disposition::ResetCard)
            .map_err(|e| Error::pcsc("SCardReconnect", &self.name, e))?;
        self.atr()
    }

    fn power_off(&mut self) -> Result<()> {
        if let Some(card) = self.card.take() {
            card.disconnect(Disposition::UnpowerCard)
                .map_err(|(_, e)| Error::pcsc("SCardDisconnect", &self.name, e))?;
        }
        Ok(())
    }

    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>> {
        let card = self.card.as_ref().ok_or_else(|| Error::NotPowered { reader: self.name.clone() })?;
        let response = card
            .transmit(command, &mut self.buffer)
            .map_err(|e| Error::pcsc("SCardTransmit", &self.name, e))?;
        Ok(response.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_parses_index_or_name() {
        assert_eq!("0".parse::<ReaderSelector>().unwrap(), ReaderSelector::Index(0));
        assert_eq!("12".parse::<ReaderSelector>().unwrap(), ReaderSelector::Index(12));
        assert_eq!(
            "Virtual PCD 00 00".parse::<ReaderSelector>().unwrap(),
            ReaderSelector::Name("Virtual PCD 00 00".into())
        );
    }

    #[test]
    fn error_messages_name_the_problem() {
        assert_eq!(
            Error::pcsc("SCardEstablishContext", "", pcsc::Error::NoService).to_string(),
            "no PC/SC service: is pcscd running?"
        );
        let e =
            Error::NoSuchReader { wanted: "xyz".into(), available: vec!["A 00 00".into(), "B 00 00".into()] };
        assert_eq!(e.to_string(), "no reader matches 'xyz'; readers: A 00 00, B 00 00");
        let e = Error::NoSuchReader { wanted: "xyz".into(), available: vec![] };
        assert_eq!(e.to_string(), "no reader matches 'xyz'; readers: (none)");
    }
}
