//! The mesh control plane: reads the config documents users write and translates them into the
//! mesh-core model, which the ADS server serves as xDS.
//!
//! - [`config`]: YAML documents (Istio `ServiceEntry`, `WorkloadEntry`, `VirtualService`,
//!   `DestinationRule`; Gateway API `HTTPRoute`) read into typed values, with diagnostics that
//!   name the file, document and field.
//! - [`translate`]: those documents into [`mesh_core::MeshResources`], with Istio's names and
//!   defaults.

pub mod config;
pub mod translate;
