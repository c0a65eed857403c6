//! RemoveDistributionGroupFromImList: takes a distribution group off the list.

super::im_items::group_id_operation!("RemoveDistributionGroupFromImList");
