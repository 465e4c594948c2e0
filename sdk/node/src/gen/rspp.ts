import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { AudioFrame as _rspp_v1_AudioFrame, AudioFrame__Output as _rspp_v1_AudioFrame__Output } from './rspp/v1/AudioFrame';
import type { Capabilities as _rspp_v1_Capabilities, Capabilities__Output as _rspp_v1_Capabilities__Output } from './rspp/v1/Capabilities';
import type { ConfigureRequest as _rspp_v1_ConfigureRequest, ConfigureRequest__Output as _rspp_v1_ConfigureRequest__Output } from './rspp/v1/ConfigureRequest';
import type { ConfigureResponse as _rspp_v1_ConfigureResponse, ConfigureResponse__Output as _rspp_v1_ConfigureResponse__Output } from './rspp/v1/ConfigureResponse';
import type { ControlPayload as _rspp_v1_ControlPayload, ControlPayload__Output as _rspp_v1_ControlPayload__Output } from './rspp/v1/ControlPayload';
import type { ControlReply as _rspp_v1_ControlReply, ControlReply__Output as _rspp_v1_ControlReply__Output } from './rspp/v1/ControlReply';
import type { ControlRequest as _rspp_v1_ControlRequest, ControlRequest__Output as _rspp_v1_ControlRequest__Output } from './rspp/v1/ControlRequest';
import type { DataFrame as _rspp_v1_DataFrame, DataFrame__Output as _rspp_v1_DataFrame__Output } from './rspp/v1/DataFrame';
import type { DescribeRequest as _rspp_v1_DescribeRequest, DescribeRequest__Output as _rspp_v1_DescribeRequest__Output } from './rspp/v1/DescribeRequest';
import type { Event as _rspp_v1_Event, Event__Output as _rspp_v1_Event__Output } from './rspp/v1/Event';
import type { HealthReply as _rspp_v1_HealthReply, HealthReply__Output as _rspp_v1_HealthReply__Output } from './rspp/v1/HealthReply';
import type { HealthRequest as _rspp_v1_HealthRequest, HealthRequest__Output as _rspp_v1_HealthRequest__Output } from './rspp/v1/HealthRequest';
import type { InvocationError as _rspp_v1_InvocationError, InvocationError__Output as _rspp_v1_InvocationError__Output } from './rspp/v1/InvocationError';
import type { NodeClient as _rspp_v1_NodeClient, NodeDefinition as _rspp_v1_NodeDefinition } from './rspp/v1/Node';
import type { NodeInfo as _rspp_v1_NodeInfo, NodeInfo__Output as _rspp_v1_NodeInfo__Output } from './rspp/v1/NodeInfo';
import type { TextPayload as _rspp_v1_TextPayload, TextPayload__Output as _rspp_v1_TextPayload__Output } from './rspp/v1/TextPayload';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  rspp: {
    v1: {
      AudioFrame: MessageTypeDefinition<_rspp_v1_AudioFrame, _rspp_v1_AudioFrame__Output>
      Capabilities: MessageTypeDefinition<_rspp_v1_Capabilities, _rspp_v1_Capabilities__Output>
      ConfigureRequest: MessageTypeDefinition<_rspp_v1_ConfigureRequest, _rspp_v1_ConfigureRequest__Output>
      ConfigureResponse: MessageTypeDefinition<_rspp_v1_ConfigureResponse, _rspp_v1_ConfigureResponse__Output>
      ControlPayload: MessageTypeDefinition<_rspp_v1_ControlPayload, _rspp_v1_ControlPayload__Output>
      ControlReply: MessageTypeDefinition<_rspp_v1_ControlReply, _rspp_v1_ControlReply__Output>
      ControlRequest: MessageTypeDefinition<_rspp_v1_ControlRequest, _rspp_v1_ControlRequest__Output>
      DataFrame: MessageTypeDefinition<_rspp_v1_DataFrame, _rspp_v1_DataFrame__Output>
      DescribeRequest: MessageTypeDefinition<_rspp_v1_DescribeRequest, _rspp_v1_DescribeRequest__Output>
      ErrorKind: EnumTypeDefinition
      Event: MessageTypeDefinition<_rspp_v1_Event, _rspp_v1_Event__Output>
      HealthReply: MessageTypeDefinition<_rspp_v1_HealthReply, _rspp_v1_HealthReply__Output>
      HealthRequest: MessageTypeDefinition<_rspp_v1_HealthRequest, _rspp_v1_HealthRequest__Output>
      InvocationError: MessageTypeDefinition<_rspp_v1_InvocationError, _rspp_v1_InvocationError__Output>
      Lane: EnumTypeDefinition
      Node: SubtypeConstructor<typeof grpc.Client, _rspp_v1_NodeClient> & { service: _rspp_v1_NodeDefinition }
      NodeInfo: MessageTypeDefinition<_rspp_v1_NodeInfo, _rspp_v1_NodeInfo__Output>
      TextPayload: MessageTypeDefinition<_rspp_v1_TextPayload, _rspp_v1_TextPayload__Output>
    }
  }
}

