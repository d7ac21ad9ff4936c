/** Keys the workerd tests authenticate with (vitest.config.ts binds them); never used outside tests. */
export const TEST_ADMIN_KEY = "test-admin-key-0123456789";
export const TEST_MASTER_KEY = "test-master-key-0123456789";
