"""Control: skills and the policies that execute them."""
