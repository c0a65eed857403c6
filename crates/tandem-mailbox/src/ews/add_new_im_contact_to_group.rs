//! AddNewImContactToGroup: a contact for a directory user's IM address, made in Quick Contacts
//! and put in the group (Other Contacts without GroupId). An address already on the list reuses
//! its contact; an address no SIP-enabled user of the directory has is
//! ErrorNameResolutionNoResults; a full list is ErrorImContactLimitReached. One transaction.

use tandem_ews_proto::ResponseCode;
use tandem_ews_proto::ops::add_new_im_contact_to_group::{self, OPERATION, Request};

use super::im_list::{self, answer};
use super::{Ctx, EwsError, fail};

/// `sip:user@domain` in lower case, from `sip:…`, `SIP:…` or a bare address.
pub(crate) fn normalize_sip(address: &str) -> Option<String> {
    let a = address.trim();
    let bare = match a.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("sip:") => &a[4..],
        _ => a,
    };
    let (user, domain) = bare.split_once('@')?;
    let ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c));
    (ok(user) && ok(domain) && domain.contains('.')).then(|| format!("sip:{}", bare.to_ascii_lowercase()))
}

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    answer(
        OPERATION,
        async {
            let im = normalize_sip(&req.im_address).ok_or_else(|| {
                fail(ResponseCode::ErrorInvalidRequest, format!("{} is not a SIP address.", req.im_address))
            })?;
            let user = ctx.s.directory.find(&im).await?.filter(|u| u.can_use_sip()).ok_or_else(|| {
                fail(
                    ResponseCode::ErrorNameResolutionNoResults,
                    format!("No user of the directory has the IM address {im}."),
                )
            })?;
            let name = req.display_name.clone().unwrap_or_else(|| user.display_name.clone());
            im_list::check_name(&name)?;
            let store = im_list::load(ctx).await?;
            let group = store.group_or_default(req.group_id.as_ref())?;
            let mut w = ctx.s.data.write().await?;
            let contact = match store.contact_by_address(&im) {
                Some(c) => c.clone(),
                None => {
                    im_list::check_contact_cap(&mut w, &store).await?;
                    let smtp = user.smtp_address.to_string();
                    let c = im_list::new_contact(ctx.mailbox(), &store.quick, &name, &im, Some(&smtp), None);
                    im_list::insert(&mut w, ctx.mailbox(), c).await?
                }
            };
            im_list::add_member(&mut w, ctx, &store.contacts, group, &contact).await?;
            w.commit().await?;
            Ok(add_new_im_contact_to_group::render(&im_list::persona(&store, &contact)))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::normalize_sip;

    #[test]
    fn sip_addresses_are_normalized_or_refused() {
        assert_eq!(normalize_sip(" SIP:Bob@Litwareinc.com ").as_deref(), Some("sip:bob@litwareinc.com"));
        assert_eq!(normalize_sip("bob@litwareinc.com").as_deref(), Some("sip:bob@litwareinc.com"));
        for bad in ["", "sip:", "bob", "sip:@x.com", "bob@localhost", "b<o>b@x.com", "tel:+1425"] {
            assert_eq!(normalize_sip(bad), None, "{bad}");
        }
    }
}
