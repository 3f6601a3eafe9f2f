"""What a request used and cost, who it was for, and the access record that says so."""
