//! The shared request types written back as XML, so a client builds requests from the very
//! types the Mailbox parses them into: what one side writes, the other side reads.

use tandem_xml::{Writer, escape};

use crate::types::{
    BaseShape, Comparison, Containment, FolderRef, IndexedPage, ItemRef, Operand, PropertyPath, Restriction, Shape,
    SortKey,
};

impl FolderRef {
    /// `<t:FolderId Id=…/>` or `<t:DistinguishedFolderId Id=…>` with its mailbox.
    pub fn to_xml(&self) -> String {
        match self {
            FolderRef::Id(id) => format!("<t:FolderId Id=\"{}\"/>", escape(id)),
            FolderRef::Distinguished { name, mailbox: None } => {
                format!("<t:DistinguishedFolderId Id=\"{}\"/>", escape(name))
            }
            FolderRef::Distinguished { name, mailbox: Some(m) } => format!(
                "<t:DistinguishedFolderId Id=\"{}\"><t:Mailbox><t:EmailAddress>{}</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>",
                escape(name),
                escape(m)
            ),
        }
    }

    /// A distinguished folder of the caller's own mailbox (`inbox`, `conversationhistory`…).
    pub fn distinguished(name: &str) -> FolderRef {
        FolderRef::Distinguished { name: name.to_owned(), mailbox: None }
    }
}

impl ItemRef {
    /// `<t:ItemId Id=… ChangeKey=…/>`.
    pub fn to_xml(&self) -> String {
        match &self.change_key {
            Some(ck) => format!("<t:ItemId Id=\"{}\" ChangeKey=\"{}\"/>", escape(&self.id), escape(ck)),
            None => format!("<t:ItemId Id=\"{}\"/>", escape(&self.id)),
        }
    }
}

impl PropertyPath {
    pub fn to_xml(&self) -> String {
        match self {
            PropertyPath::Field(uri) => format!("<t:FieldURI FieldURI=\"{}\"/>", escape(uri)),
            PropertyPath::Indexed { uri, index } => {
                format!("<t:IndexedFieldURI FieldURI=\"{}\" FieldIndex=\"{}\"/>", escape(uri), escape(index))
            }
            PropertyPath::Extended(e) => e.render(),
        }
    }
}

impl BaseShape {
    pub fn as_str(self) -> &'static str {
        match self {
            BaseShape::IdOnly => "IdOnly",
            BaseShape::Default => "Default",
            BaseShape::AllProperties => "AllProperties",
        }
    }
}

impl Shape {
    /// A shape with no additional properties.
    pub fn base(base: BaseShape) -> Shape {
        Shape { base, additional: Vec::new(), include_mime: false }
    }

    /// `<m:{element}>` (`ItemShape`, `FolderShape`) with the base shape and additional paths.
    pub fn to_xml(&self, element: &str) -> String {
        let mut w = Writer::new();
        w.start(&format!("m:{element}"), &[]).leaf("t:BaseShape", self.base.as_str());
        if self.include_mime {
            w.leaf("t:IncludeMimeContent", "true");
        }
        if !self.additional.is_empty() {
            w.start("t:AdditionalProperties", &[]);
            for p in &self.additional {
                w.raw(&p.to_xml());
            }
            w.end();
        }
        w.finish()
    }
}

impl Comparison {
    fn element(self) -> &'static str {
        match self {
            Comparison::Equal => "IsEqualTo",
            Comparison::NotEqual => "IsNotEqualTo",
            Comparison::Greater => "IsGreaterThan",
            Comparison::GreaterOrEqual => "IsGreaterThanOrEqualTo",
            Comparison::Less => "IsLessThan",
            Comparison::LessOrEqual => "IsLessThanOrEqualTo",
        }
    }
}

impl Containment {
    fn as_str(self) -> &'static str {
        match self {
            Containment::FullString => "FullString",
            Containment::Prefixed => "Prefixed",
            Containment::Substring => "Substring",
            Containment::PrefixOnWords => "PrefixOnWords",
            Containment::ExactPhrase => "ExactPhrase",
        }
    }
}

impl Restriction {
    /// `<m:Restriction>` around the expression.
    pub fn to_xml(&self) -> String {
        let mut s = String::from("<m:Restriction>");
        self.write(&mut s);
        s.push_str("</m:Restriction>");
        s
    }

    fn write(&self, s: &mut String) {
        match self {
            Restriction::And(parts) | Restriction::Or(parts) => {
                let el = if matches!(self, Restriction::And(_)) { "t:And" } else { "t:Or" };
                s.push_str(&format!("<{el}>"));
                for p in parts {
                    p.write(s);
                }
                s.push_str(&format!("</{el}>"));
            }
            Restriction::Not(inner) => {
                s.push_str("<t:Not>");
                inner.write(s);
                s.push_str("</t:Not>");
            }
            Restriction::Exists(path) => s.push_str(&format!("<t:Exists>{}</t:Exists>", path.to_xml())),
            Restriction::Compare { path, op, value } => {
                let operand = match value {
                    Operand::Constant(v) => format!("<t:Constant Value=\"{}\"/>", escape(v)),
                    Operand::Path(p) => p.to_xml(),
                };
                let el = op.element();
                s.push_str(&format!(
                    "<t:{el}>{}<t:FieldURIOrConstant>{operand}</t:FieldURIOrConstant></t:{el}>",
                    path.to_xml()
                ));
            }
            Restriction::Contains { path, value, mode, ignore_case } => s.push_str(&format!(
                "<t:Contains ContainmentMode=\"{}\" ContainmentComparison=\"{}\">{}<t:Constant Value=\"{}\"/></t:Contains>",
                mode.as_str(),
                if *ignore_case { "IgnoreCase" } else { "Exact" },
                path.to_xml(),
                escape(value)
            )),
            Restriction::Excludes { path, mask } => s.push_str(&format!(
                "<t:Excludes>{}<t:Bitmask Value=\"0x{mask:x}\"/></t:Excludes>",
                path.to_xml()
            )),
        }
    }
}

/// `<m:SortOrder>` with one FieldOrder per key.
pub fn sort_to_xml(keys: &[SortKey]) -> String {
    let mut s = String::from("<m:SortOrder>");
    for k in keys {
        s.push_str(&format!(
            "<t:FieldOrder Order=\"{}\">{}</t:FieldOrder>",
            if k.ascending { "Ascending" } else { "Descending" },
            k.path.to_xml()
        ));
    }
    s.push_str("</m:SortOrder>");
    s
}

impl IndexedPage {
    /// `<m:{element}/>` (`IndexedPageItemView`, `IndexedPageFolderView`).
    pub fn to_xml(&self, element: &str) -> String {
        let max = self.max.map(|m| format!(" MaxEntriesReturned=\"{m}\"")).unwrap_or_default();
        format!(
            "<m:{element}{max} Offset=\"{}\" BasePoint=\"{}\"/>",
            self.offset,
            if self.from_end { "End" } else { "Beginning" }
        )
    }
}
