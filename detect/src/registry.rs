//! The single list of detectors. Adding a detector: a file in `detectors/`, a line here.

use crate::detector::Detector;
use crate::detectors::{mfa_not_satisfied::MfaNotSatisfied, risky_user::RiskyUser};

/// Every detector, in catalogue order.
pub fn all() -> Vec<Box<dyn Detector>> {
    vec![Box::new(MfaNotSatisfied), Box::new(RiskyUser)]
}
