//! The Microsoft Graph source (placeholder until the Graph work lands).
