package rollout

// ActiveStep names the running rollout that holds a cell, and its step.
type ActiveStep struct {
	ID   string
	Step int // index of the step last entered; -1 before the first
}

// ActiveSteps returns, for every cell a running rollout holds (its targets,
// then its baseline cells where no target claims them), that rollout's id
// and step: the access log names them on each request's line.
func (c *Controller) ActiveSteps() map[string]ActiveStep {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]ActiveStep{}
	for _, d := range c.active {
		for _, cell := range d.Plan.Baseline {
			if _, ok := out[cell]; !ok {
				out[cell] = ActiveStep{ID: d.ID, Step: d.Step}
			}
		}
	}
	for _, d := range c.active {
		for _, cell := range d.Plan.Targets {
			out[cell] = ActiveStep{ID: d.ID, Step: d.Step}
		}
	}
	return out
}
