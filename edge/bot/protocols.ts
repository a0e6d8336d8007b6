import type { Route } from '../config.js';
import { JambonzProtocol } from './jambonz.js';
import { NativeProtocol } from './native-protocol.js';
import type { BotProtocol, CallInfo } from './protocol.js';
import { TwilioProtocol } from './twilio.js';

/** The protocol a route asks for, with the route's options resolved. */
export function createProtocol(route: Route, call: CallInfo): BotProtocol {
  switch (route.protocol) {
    case 'twilio':
      return new TwilioProtocol(call, {
        accountSid: route.twilio?.accountSid ?? 'AC00000000000000000000000000000000',
        authToken: route.twilio?.authToken,
        customParameters: route.twilio?.customParameters ?? {},
      });
    case 'jambonz':
      return new JambonzProtocol(call, route.sampleRate, {
        subprotocol: route.jambonz?.subprotocol ?? 'audio.jambonz.org',
        metadata: route.jambonz?.metadata ?? {},
        accountSid: route.jambonz?.accountSid ?? '',
        applicationSid: route.jambonz?.applicationSid ?? '',
        passDtmf: route.jambonz?.passDtmf ?? true,
      });
    case 'native':
    case 'native-mux': // the same messages, carried on a shared socket by MuxBotStream (mux.ts)
      return new NativeProtocol(call, route.sampleRate);
  }
}
