package bounces

// Diagnosis is what the classifier concludes about one answer: the class,
// whether the failure is hard (the address is permanently undeliverable:
// suppress it) or soft, the id of the rule that decided, and a one-line
// explanation an operator can read.
type Diagnosis struct {
	Class       Class  `json:"class"`
	Hard        bool   `json:"hard"`
	Rule        string `json:"rule"`
	Explanation string `json:"explanation"`
}
