package fail

import (
	"context"
	"testing"
)

func TestFail(t *testing.T) {
	m := &Module{Msg: "use the downgrade procedure"}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	res, err := m.Run(context.Background(), nil)
	if err == nil || err.Error() != m.Msg || res.Data["msg"] != m.Msg || res.Changed {
		t.Errorf("Run = %+v, %v", res, err)
	}
	if _, err := m.Check(context.Background(), nil); err == nil {
		t.Error("Check passed")
	}
	if err := (&Module{}).Validate(); err == nil {
		t.Error("an empty message was accepted")
	}
}
