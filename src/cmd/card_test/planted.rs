//! The emulated card with a planted defect (uicc-applet feature `testing`), behind the [`Reader`]
//! trait: what `keysim card-test --emulator --defect NAME` tests, so the suite proves it fails.

use anyhow::{Result, anyhow};
use sim_reader::{CardProfile, ImageNvm, NVM_SIZE, Protocol, Reader};
use uicc_applet::testing::Defect;
use uicc_applet::{RESPONSE_MAX, Transport, Uicc};

/// The defect named `name` ([`Defect::name`]).
pub(super) fn defect(name: &str) -> Result<Defect> {
    Defect::from_name(name).ok_or_else(|| {
        let known: Vec<_> = Defect::ALL.iter().map(|d| d.name()).collect();
        anyhow!("--defect {name}: unknown; known defects: {}", known.join(", "))
    })
}

/// A defective card in memory, T=0.
pub(super) struct PlantedCard {
    card: Option<Uicc<ImageNvm>>,
    defect: Defect,
}

impl PlantedCard {
    pub(super) fn new(profile: &CardProfile, defect: Defect) -> Result<Self> {
        let mut nvm = ImageNvm::blank(NVM_SIZE);
        let impu = profile.impu_refs();
        Uicc::personalize(&mut nvm, &profile.personalization(&impu))
            .map_err(|e| anyhow!("personalizing the card: {e:?}"))?;
        let mut planted = PlantedCard { card: None, defect };
        planted.start(nvm);
        Ok(planted)
    }

    fn start(&mut self, nvm: ImageNvm) {
        let mut card = Uicc::power_on(nvm);
        card.set_transport(Transport::T0);
        card.plant_defect(Some(self.defect));
        self.card = Some(card);
    }
}

impl Reader for PlantedCard {
    fn name(&self) -> &str {
        "keysim emulated UICC (planted defect)"
    }
    fn protocol(&self) -> Protocol {
        Protocol::T0
    }
    fn power_on(&mut self) -> sim_reader::Result<Vec<u8>> {
        if let Some(card) = self.card.take() {
            self.start(card.into_nvm());
        }
        Ok(uicc_applet::ATR.to_vec())
    }
    fn reset(&mut self) -> sim_reader::Result<Vec<u8>> {
        if let Some(card) = &mut self.card {
            card.reset();
        }
        Ok(uicc_applet::ATR.to_vec())
    }
    fn power_off(&mut self) -> sim_reader::Result<()> {
        Ok(())
    }
    fn transmit(&mut self, command: &[u8]) -> sim_reader::Result<Vec<u8>> {
        let mut response = [0u8; RESPONSE_MAX];
        let n = self.card.as_mut().map_or(0, |c| c.process(command, &mut response));
        Ok(response[..n.min(RESPONSE_MAX)].to_vec())
    }
}
