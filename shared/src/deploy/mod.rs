//! What a deploy runs before the API serves: CloudFormation's custom-resource protocol
//! ([`custom_resource`]), the roles and databases of a new server ([`bootstrap`]) and the
//! embedded schema migrations ([`migrate`]).

pub mod bootstrap;
pub mod custom_resource;
pub mod migrate;
