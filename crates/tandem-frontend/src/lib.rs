//! tandem-frontend
