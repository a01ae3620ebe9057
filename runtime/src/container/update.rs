//! Updating a running container's limits, as every face asks for it.

use oci_spec::runtime::LinuxResources;

use super::Container;
use crate::Result;

impl Container {
    /// Changes the container's limits to `res` (`linux.resources` as `config.json` has it;
    /// what it does not set is left as it is). The values are checked as at create
    /// ([`crate::validate::resources`]): a value refused in a `config.json` is refused here
    /// the same way. Device rules are not updated.
    pub fn update_resources(&self, res: &LinuxResources) -> Result<()> {
        crate::validate::resources(res)?;
        let r = crate::resources::limits(res)?;
        self.update(&r)
    }
}
