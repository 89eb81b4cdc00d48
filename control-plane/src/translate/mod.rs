//! Stub until the translator lands.
#![allow(missing_docs)]
pub fn build(
    _docs: &[crate::config::Document],
) -> (mesh_core::MeshResources, Vec<crate::config::Diagnostic>) {
    Default::default()
}
