//! The XML answers of the EC2, STS and Route 53 APIs as a small owned
//! tree (parsed by roxmltree), with the three lookups the describes need:
//! a child, a child's text, and the `<item>`s (or members) of a set.

/// One element: its local name, its own text, its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// Parse a whole document; its root element.
    pub fn parse(text: &str) -> Result<Element, String> {
        let document = roxmltree::Document::parse(text).map_err(|err| err.to_string())?;
        Ok(Element::from_node(document.root_element()))
    }

    fn from_node(node: roxmltree::Node<'_, '_>) -> Element {
        let text = node
            .children()
            .filter(|c| c.is_text())
            .filter_map(|c| c.text())
            .collect::<String>()
            .trim()
            .to_string();
        Element {
            name: node.tag_name().name().to_string(),
            text,
            children: node
                .children()
                .filter(|c| c.is_element())
                .map(Element::from_node)
                .collect(),
        }
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The text of child `name`, if it is there and not empty.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.as_str())
            .filter(|t| !t.is_empty())
    }

    /// The elements of the set `name` (EC2's `<item>`, Route 53's own names).
    pub fn items(&self, name: &str) -> impl Iterator<Item = &Element> {
        self.child(name)
            .into_iter()
            .flat_map(|set| set.children.iter())
    }

    /// The first element named `name` anywhere below (error bodies nest differently per API).
    pub fn find(&self, name: &str) -> Option<&Element> {
        self.children.iter().find_map(|c| {
            if c.name == name {
                Some(c)
            } else {
                c.find(name)
            }
        })
    }

    /// An error answer's code and message.
    /// An error document's code and message; the code is empty when the
    /// document carries none (then it is no AWS error).
    pub fn error(&self) -> (String, String) {
        let code = self
            .find("Code")
            .map(|c| c.text.clone())
            .unwrap_or_default();
        let message = self
            .find("Message")
            .map(|c| c.text.clone())
            .unwrap_or_default();
        (code, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec2_sets_and_errors_read() {
        let answer = Element::parse(
            "<DescribeSecurityGroupsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
             <securityGroupInfo><item><groupId>sg-1</groupId></item><item><groupId>sg-2</groupId></item></securityGroupInfo>\
             </DescribeSecurityGroupsResponse>",
        )
        .unwrap();
        let ids: Vec<_> = answer
            .items("securityGroupInfo")
            .filter_map(|g| g.text_of("groupId"))
            .collect();
        assert_eq!(ids, ["sg-1", "sg-2"]);
        let error = Element::parse("<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>no</Message></Error></Errors></Response>").unwrap();
        assert_eq!(error.error(), ("UnauthorizedOperation".into(), "no".into()));
    }
}
