//! Work in progress: the canonical test fixture.
