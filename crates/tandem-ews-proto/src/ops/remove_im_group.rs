//! RemoveImGroup: removes a user group; its members stay on the list (in Other Contacts when no other group lists them).

super::im_items::group_id_operation!("RemoveImGroup");
