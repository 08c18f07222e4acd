//! AWS's APIs without an SDK: SigV4 signing ([`sigv4`]: presigned IAM tokens for RDS and MSK,
//! signed requests), one signed JSON API call ([`api`]), and the two calls made with it: a
//! database login from Secrets Manager ([`secrets`]) and a cluster's brokers from MSK ([`msk`]).

pub mod api;
pub mod msk;
pub mod secrets;
pub mod sigv4;
