"""An app's image: `ServiceImage` (`component`: build from app/ and push, tagged with the
commit) and the commit of the checkout (`git`, also read by stackctl's deploy).
May import: components.config.
"""
