//! Tenant ids interned to small numbers: the state keys every map by a tenant's number, and
//! names it back only when a finding needs the text.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::keys::KeyHash;

/// Interned tenant ids.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Tenants {
    ids: HashMap<String, u32, KeyHash>,
    names: Vec<String>,
}

impl Tenants {
    pub fn intern(&mut self, tenant: &str) -> u32 {
        if let Some(&i) = self.ids.get(tenant) {
            return i;
        }
        let i = self.names.len() as u32;
        self.ids.insert(tenant.to_owned(), i);
        self.names.push(tenant.to_owned());
        i
    }

    pub fn get(&self, tenant: &str) -> Option<u32> {
        self.ids.get(tenant).copied()
    }

    pub fn name(&self, i: u32) -> &str {
        &self.names[i as usize]
    }
}
