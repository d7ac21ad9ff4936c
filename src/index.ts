import { createApp } from "./app.ts";

export { PoolCoordinator } from "../durable-objects/pool-coordinator/index.ts";
export { MeshDirectory } from "../durable-objects/mesh-directory/index.ts";
export { KeyStore } from "../durable-objects/key-store/index.ts";
export { AuditLog } from "../durable-objects/audit-log/index.ts";
export { KeyIndex } from "../durable-objects/key-index/index.ts";
export { VectorIndex } from "../durable-objects/vector-index/index.ts";
export { CacheIndex } from "../durable-objects/cache-index/index.ts";
export { WorkflowCoordinator } from "../durable-objects/workflow-coordinator/index.ts";
export { Scheduler } from "../durable-objects/scheduler/index.ts";
export { MeshEntrypoint } from "./entrypoint.ts";

const app = createApp();

export default app satisfies ExportedHandler<Env>;
