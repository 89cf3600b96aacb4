package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/openioc/ioc/dataset"
)

// DatasetsConfig configures a Datasets feeder. Zero fields take the
// defaults.
type DatasetsConfig struct {
	BaseURL    string // the server, e.g. http://127.0.0.1:8080
	HTTPClient *http.Client
	Token      string // a token that may upload the units' values
	// Units are the communes values are made for.
	Units []string
	// Location is the deployment's zone, where periods end.
	Location *time.Location
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Every is how often Run looks for periods that have ended; default 1m.
	Every time.Duration
	// Years is how far back a dataset with no values starts; default 3.
	Years int
}

// Datasets feeds the department datasets of deploy/datasets (population,
// enterprises, enrolment) as their departments would: each period's
// values for every unit once the period has ended, through the upload
// endpoint. It asks the server for each feed's latest period
// (GET /api/v1/datasets/health), so a restart resumes rather than sending
// again; a dataset the server does not define is left alone. The values
// are made up but hang together (a commune's pupils follow its residents),
// and depend only on the unit and the period.
//
// Concurrency: Step and Run are not to be called concurrently.
type Datasets struct {
	cfg    DatasetsConfig
	logger *slog.Logger
}

// NewDatasets returns a feeder.
func NewDatasets(cfg DatasetsConfig, logger *slog.Logger) (*Datasets, error) {
	if cfg.BaseURL == "" || cfg.Token == "" || len(cfg.Units) == 0 || logger == nil {
		return nil, errors.New("the datasets simulator needs the server's URL, a token, units and a logger")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Minute
	}
	if cfg.Years <= 0 {
		cfg.Years = 3
	}
	return &Datasets{cfg: cfg, logger: logger}, nil
}

// Run steps every Every until ctx ends; a failed step is logged and tried
// again at the next.
func (s *Datasets) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Every)
	defer t.Stop()
	for {
		if err := s.Step(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("feed the simulated datasets; trying again", "err", err, "in", s.cfg.Every)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// made is a dataset the simulator makes values for.
type made struct {
	grain  dataset.Grain
	unit   string // the columns of its rows
	period string
	// values gives a unit's row for a period: column → value.
	values func(unit string, period time.Time) map[string]float64
}

// residents is a commune's population in a year: 6,000 to 66,000 in 2020,
// growing 1.2% a year.
func residents(unit string, year int) float64 {
	return math.Round((6000 + 60000*share(unit, "residents")) * math.Pow(1.012, float64(year-2020)))
}

var simulated = map[string]made{
	"population": {grain: dataset.Year, unit: "Mã xã", period: "Năm", values: func(u string, p time.Time) map[string]float64 {
		r := residents(u, p.Year())
		return map[string]float64{"Dân số": r, "Số hộ": math.Round(r / (3.0 + 0.6*share(u, "household")))}
	}},
	"enterprises": {grain: dataset.Month, unit: "Mã xã", period: "Tháng", values: func(u string, p time.Time) map[string]float64 {
		key := u + p.Format("2006-01")
		reg := math.Round(residents(u, p.Year()) / 1500 * (0.6 + 0.8*share(key, "registered")))
		return map[string]float64{"Thành lập mới": reg, "Giải thể": math.Round(reg * (0.15 + 0.3*share(key, "dissolved")))}
	}},
	"enrolment": {grain: dataset.Year, unit: "Mã xã", period: "Năm học", values: func(u string, p time.Time) map[string]float64 {
		pupils := math.Round(residents(u, p.Year()) * (0.15 + 0.05*share(u, "pupils")))
		return map[string]float64{"Học sinh": pupils, "Giáo viên": math.Round(pupils / (17 + 9*share(u, "teachers"))),
			"Trường": math.Max(1, math.Round(pupils/700))}
	}},
}

// share is a number in [0, 1) fixed by the key and the salt.
func share(key, salt string) float64 {
	h := fnv.New64a()
	h.Write([]byte(salt + "/" + key))
	return float64(h.Sum64()%10000) / 10000
}

// feed is a dataset's entry of the health answer.
type feed struct {
	Dataset      string `json:"dataset"`
	LatestPeriod string `json:"latest_period"`
}

// Step sends, for every simulated dataset the server defines, the periods
// that have ended since its latest one (or since Years ago), oldest first,
// at most a year of them per request.
func (s *Datasets) Step(ctx context.Context) error {
	var health struct {
		Datasets []feed `json:"datasets"`
	}
	if err := s.call(ctx, http.MethodGet, "/api/v1/datasets/health", "", nil, &health); err != nil {
		return err
	}
	now := s.cfg.Now().In(s.cfg.Location)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	var errs []error
	for _, f := range health.Datasets {
		m, ok := simulated[f.Dataset]
		if !ok {
			continue
		}
		next := m.grain.Floor(today.AddDate(-s.cfg.Years, 0, 0))
		if f.LatestPeriod != "" {
			latest, err := m.grain.Parse(f.LatestPeriod)
			if err != nil {
				errs = append(errs, fmt.Errorf("dataset %s: the server's latest period: %w", f.Dataset, err))
				continue
			}
			next = m.grain.Next(latest)
		}
		for !m.grain.Next(next).After(today) {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			for n := 0; n < 12 && !m.grain.Next(next).After(today); n++ {
				for _, u := range s.cfg.Units {
					row := map[string]any{m.unit: u, m.period: m.grain.Format(next)}
					for col, v := range m.values(u, next) {
						row[col] = v
					}
					_ = enc.Encode(row)
				}
				next = m.grain.Next(next)
			}
			var up struct {
				Stored  int `json:"stored"`
				Refused int `json:"refused"`
			}
			if err := s.call(ctx, http.MethodPost, "/api/v1/datasets/"+f.Dataset+"/values", "application/x-ndjson", &b, &up); err != nil {
				errs = append(errs, fmt.Errorf("dataset %s: %w", f.Dataset, err))
				break
			}
			if up.Refused > 0 {
				s.logger.Warn("the server refused simulated dataset rows", "dataset", f.Dataset, "refused", up.Refused)
			}
		}
	}
	return errors.Join(errs...)
}

// call sends a request and decodes its JSON answer into out.
func (s *Datasets) call(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(s.cfg.BaseURL, "/")+path, body)
	if err != nil {
		return fmt.Errorf("build %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+s.cfg.Token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return fmt.Errorf("read the answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, snippet(b))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("the answer to %s %s is not JSON: %w", method, path, err)
	}
	return nil
}
