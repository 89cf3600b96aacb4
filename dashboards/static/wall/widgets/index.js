// The widget types a dashboard may use, by the name in its definition.

import { Kpi } from './kpi.js';
import { MapWidget } from './map.js';
import { Ranking } from './ranking.js';
import { Series } from './series.js';
import { Alarms } from './alarms.js';
import { Events } from './events.js';
import { Scoreboard } from './scoreboard.js';
import { Feeds } from './feeds.js';
import { Clock, Header, Text } from './simple.js';

export const TYPES = {
  kpi: Kpi, map: MapWidget, ranking: Ranking, series: Series, alarms: Alarms,
  events: Events, scoreboard: Scoreboard, feeds: Feeds, clock: Clock, header: Header, text: Text,
};

export function create(board, spec) {
  const T = TYPES[spec.type];
  if (!T) throw new Error(`unknown widget type "${spec.type}"`);
  return new T(board, spec);
}
