//! SSM Parameter Store behind the `Parameters` port: the init lock and the told refusals.
//! One API per method and its error mapping; no decisions.

use aws_sdk_ssm::types::ParameterType;
use swarm_core::ports::{Parameters, PortResult};

use crate::{aws_error, code_of, OnFirstUse, SdkConfig};

/// Parameter Store: the init lock. Join tokens are written and read only on instances.
pub struct AwsParameters {
    client: OnFirstUse<aws_sdk_ssm::Client>,
}

impl AwsParameters {
    pub fn new(client: aws_sdk_ssm::Client) -> Self {
        AwsParameters {
            client: OnFirstUse::Ready(client),
        }
    }

    /// The client built when first called.
    pub fn on_first_use(conf: &SdkConfig) -> Self {
        AwsParameters {
            client: OnFirstUse::lazy(conf, aws_sdk_ssm::Client::new),
        }
    }
}

impl Parameters for AwsParameters {
    async fn create(&self, name: &str, value: &str) -> PortResult<bool> {
        let r = self
            .client
            .get()
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::String)
            .overwrite(false)
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error().is_some_and(|s| s.is_parameter_already_exists())
                    || code_of(&e) == Some("ParameterAlreadyExists") =>
            {
                Ok(false)
            }
            Err(e) => Err(aws_error("PutParameter", &e)),
        }
    }

    async fn list(&self, path: &str) -> PortResult<Vec<(String, String)>> {
        let mut pages = self
            .client
            .get()
            .get_parameters_by_path()
            .path(path)
            .recursive(true)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("GetParametersByPath", &e))?;
            out.extend(page.parameters().iter().map(|p| {
                (
                    p.name().unwrap_or_default().to_string(),
                    p.value().unwrap_or_default().to_string(),
                )
            }));
        }
        Ok(out)
    }

    async fn delete(&self, names: &[String]) -> PortResult<()> {
        // DeleteParameters takes at most 10 names; a name already gone is answered in
        // InvalidParameters, not as an error.
        for chunk in names.chunks(10) {
            self.client
                .get()
                .delete_parameters()
                .set_names(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| aws_error("DeleteParameters", &e))?;
        }
        Ok(())
    }
}
