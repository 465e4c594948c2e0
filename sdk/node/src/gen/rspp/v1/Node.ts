// Original file: proto/rspp.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { ConfigureRequest as _rspp_v1_ConfigureRequest, ConfigureRequest__Output as _rspp_v1_ConfigureRequest__Output } from '../../rspp/v1/ConfigureRequest';
import type { ConfigureResponse as _rspp_v1_ConfigureResponse, ConfigureResponse__Output as _rspp_v1_ConfigureResponse__Output } from '../../rspp/v1/ConfigureResponse';
import type { ControlReply as _rspp_v1_ControlReply, ControlReply__Output as _rspp_v1_ControlReply__Output } from '../../rspp/v1/ControlReply';
import type { ControlRequest as _rspp_v1_ControlRequest, ControlRequest__Output as _rspp_v1_ControlRequest__Output } from '../../rspp/v1/ControlRequest';
import type { DataFrame as _rspp_v1_DataFrame, DataFrame__Output as _rspp_v1_DataFrame__Output } from '../../rspp/v1/DataFrame';
import type { DescribeRequest as _rspp_v1_DescribeRequest, DescribeRequest__Output as _rspp_v1_DescribeRequest__Output } from '../../rspp/v1/DescribeRequest';
import type { HealthReply as _rspp_v1_HealthReply, HealthReply__Output as _rspp_v1_HealthReply__Output } from '../../rspp/v1/HealthReply';
import type { HealthRequest as _rspp_v1_HealthRequest, HealthRequest__Output as _rspp_v1_HealthRequest__Output } from '../../rspp/v1/HealthRequest';
import type { NodeInfo as _rspp_v1_NodeInfo, NodeInfo__Output as _rspp_v1_NodeInfo__Output } from '../../rspp/v1/NodeInfo';

export interface NodeClient extends grpc.Client {
  Configure(argument: _rspp_v1_ConfigureRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rspp_v1_ConfigureResponse__Output>): grpc.ClientUnaryCall;
  Configure(argument: _rspp_v1_ConfigureRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rspp_v1_ConfigureResponse__Output>): grpc.ClientUnaryCall;
  Configure(argument: _rspp_v1_ConfigureRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rspp_v1_ConfigureResponse__Output>): grpc.ClientUnaryCall;
  Configure(argument: _rspp_v1_ConfigureRequest, callback: grpc.requestCallback<_rspp_v1_ConfigureResponse__Output>): grpc.ClientUnaryCall;
  configure(argument: _rspp_v1_ConfigureRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rspp_v1_ConfigureResponse__Output>): grpc.ClientUnaryCall;
  configure(argument: _rspp_v1_ConfigureRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rspp_v1_ConfigureResponse__Output>): grpc.ClientUnaryCall;
  configure(argument: _rspp_v1_ConfigureRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rspp_v1_ConfigureResponse__Output>): grpc.ClientUnaryCall;
  configure(argument: _rspp_v1_ConfigureRequest, callback: grpc.requestCallback<_rspp_v1_ConfigureResponse__Output>): grpc.ClientUnaryCall;
  
  Control(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_rspp_v1_ControlRequest, _rspp_v1_ControlReply__Output>;
  Control(options?: grpc.CallOptions): grpc.ClientDuplexStream<_rspp_v1_ControlRequest, _rspp_v1_ControlReply__Output>;
  control(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_rspp_v1_ControlRequest, _rspp_v1_ControlReply__Output>;
  control(options?: grpc.CallOptions): grpc.ClientDuplexStream<_rspp_v1_ControlRequest, _rspp_v1_ControlReply__Output>;
  
  Data(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_rspp_v1_DataFrame, _rspp_v1_DataFrame__Output>;
  Data(options?: grpc.CallOptions): grpc.ClientDuplexStream<_rspp_v1_DataFrame, _rspp_v1_DataFrame__Output>;
  data(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_rspp_v1_DataFrame, _rspp_v1_DataFrame__Output>;
  data(options?: grpc.CallOptions): grpc.ClientDuplexStream<_rspp_v1_DataFrame, _rspp_v1_DataFrame__Output>;
  
  Describe(argument: _rspp_v1_DescribeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rspp_v1_NodeInfo__Output>): grpc.ClientUnaryCall;
  Describe(argument: _rspp_v1_DescribeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rspp_v1_NodeInfo__Output>): grpc.ClientUnaryCall;
  Describe(argument: _rspp_v1_DescribeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rspp_v1_NodeInfo__Output>): grpc.ClientUnaryCall;
  Describe(argument: _rspp_v1_DescribeRequest, callback: grpc.requestCallback<_rspp_v1_NodeInfo__Output>): grpc.ClientUnaryCall;
  describe(argument: _rspp_v1_DescribeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rspp_v1_NodeInfo__Output>): grpc.ClientUnaryCall;
  describe(argument: _rspp_v1_DescribeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rspp_v1_NodeInfo__Output>): grpc.ClientUnaryCall;
  describe(argument: _rspp_v1_DescribeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rspp_v1_NodeInfo__Output>): grpc.ClientUnaryCall;
  describe(argument: _rspp_v1_DescribeRequest, callback: grpc.requestCallback<_rspp_v1_NodeInfo__Output>): grpc.ClientUnaryCall;
  
  Health(argument: _rspp_v1_HealthRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rspp_v1_HealthReply__Output>): grpc.ClientUnaryCall;
  Health(argument: _rspp_v1_HealthRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rspp_v1_HealthReply__Output>): grpc.ClientUnaryCall;
  Health(argument: _rspp_v1_HealthRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rspp_v1_HealthReply__Output>): grpc.ClientUnaryCall;
  Health(argument: _rspp_v1_HealthRequest, callback: grpc.requestCallback<_rspp_v1_HealthReply__Output>): grpc.ClientUnaryCall;
  health(argument: _rspp_v1_HealthRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_rspp_v1_HealthReply__Output>): grpc.ClientUnaryCall;
  health(argument: _rspp_v1_HealthRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_rspp_v1_HealthReply__Output>): grpc.ClientUnaryCall;
  health(argument: _rspp_v1_HealthRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_rspp_v1_HealthReply__Output>): grpc.ClientUnaryCall;
  health(argument: _rspp_v1_HealthRequest, callback: grpc.requestCallback<_rspp_v1_HealthReply__Output>): grpc.ClientUnaryCall;
  
}

export interface NodeHandlers extends grpc.UntypedServiceImplementation {
  Configure: grpc.handleUnaryCall<_rspp_v1_ConfigureRequest__Output, _rspp_v1_ConfigureResponse>;
  
  Control: grpc.handleBidiStreamingCall<_rspp_v1_ControlRequest__Output, _rspp_v1_ControlReply>;
  
  Data: grpc.handleBidiStreamingCall<_rspp_v1_DataFrame__Output, _rspp_v1_DataFrame>;
  
  Describe: grpc.handleUnaryCall<_rspp_v1_DescribeRequest__Output, _rspp_v1_NodeInfo>;
  
  Health: grpc.handleUnaryCall<_rspp_v1_HealthRequest__Output, _rspp_v1_HealthReply>;
  
}

export interface NodeDefinition extends grpc.ServiceDefinition {
  Configure: MethodDefinition<_rspp_v1_ConfigureRequest, _rspp_v1_ConfigureResponse, _rspp_v1_ConfigureRequest__Output, _rspp_v1_ConfigureResponse__Output>
  Control: MethodDefinition<_rspp_v1_ControlRequest, _rspp_v1_ControlReply, _rspp_v1_ControlRequest__Output, _rspp_v1_ControlReply__Output>
  Data: MethodDefinition<_rspp_v1_DataFrame, _rspp_v1_DataFrame, _rspp_v1_DataFrame__Output, _rspp_v1_DataFrame__Output>
  Describe: MethodDefinition<_rspp_v1_DescribeRequest, _rspp_v1_NodeInfo, _rspp_v1_DescribeRequest__Output, _rspp_v1_NodeInfo__Output>
  Health: MethodDefinition<_rspp_v1_HealthRequest, _rspp_v1_HealthReply, _rspp_v1_HealthRequest__Output, _rspp_v1_HealthReply__Output>
}
