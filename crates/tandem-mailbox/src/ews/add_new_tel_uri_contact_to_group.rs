//! AddNewTelUriContactToGroup: a telephone-number contact (IM address a `tel:` URI, the number as
//! its business phone) made in Quick Contacts and put in the group. One transaction.

use tandem_ews_proto::ResponseCode;
use tandem_ews_proto::ops::add_new_tel_uri_contact_to_group::{self, OPERATION, Request};

use super::im_list::{self, answer};
use super::{Ctx, EwsError, fail};

/// A `tel:` URI of a global number (`tel:+14255550100`) with its prefix in lower case.
fn normalize_tel(uri: &str) -> Option<String> {
    let u = uri.trim();
    let rest = u.get(..4).filter(|p| p.eq_ignore_ascii_case("tel:")).map(|_| &u[4..])?;
    let number = rest.split(';').next()?;
    let digits = number.strip_prefix('+')?;
    let ok = !digits.is_empty()
        && digits.len() <= 32
        && digits.chars().all(|c| c.is_ascii_digit() || c == '-' || c == '.')
        && rest.chars().all(|c| c.is_ascii_graphic());
    ok.then(|| format!("tel:{rest}"))
}

pub(crate) async fn handle(ctx: &Ctx<'_>, req: Request) -> Result<String, EwsError> {
    answer(
        OPERATION,
        async {
            let tel = normalize_tel(&req.tel_uri_address).ok_or_else(|| {
                fail(ResponseCode::ErrorInvalidRequest, format!("{} is not a global tel: URI.", req.tel_uri_address))
            })?;
            im_list::check_name(&req.im_telephone_number)?;
            let store = im_list::load(ctx).await?;
            let group = store.group_or_default(req.group_id.as_ref())?;
            let mut w = ctx.s.data.write().await?;
            let contact = match store.contact_by_address(&tel) {
                Some(c) => c.clone(),
                None => {
                    im_list::check_contact_cap(&mut w, &store).await?;
                    let c = im_list::new_contact(
                        ctx.mailbox(),
                        &store.quick,
                        &req.im_telephone_number,
                        &tel,
                        None,
                        Some(&req.im_telephone_number),
                    );
                    im_list::insert(&mut w, ctx.mailbox(), c).await?
                }
            };
            im_list::add_member(&mut w, ctx, &store.contacts, group, &contact).await?;
            w.commit().await?;
            Ok(add_new_tel_uri_contact_to_group::render(&im_list::persona(&store, &contact)))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::normalize_tel;

    #[test]
    fn tel_uris_are_checked() {
        assert_eq!(normalize_tel("TEL:+1-425-555-0100").as_deref(), Some("tel:+1-425-555-0100"));
        assert_eq!(normalize_tel("tel:+14255550100;ext=12").as_deref(), Some("tel:+14255550100;ext=12"));
        for bad in ["", "tel:", "tel:4255550100", "sip:+1425@x.com", "tel:+", "tel:+1 425"] {
            assert_eq!(normalize_tel(bad), None, "{bad}");
        }
    }
}
