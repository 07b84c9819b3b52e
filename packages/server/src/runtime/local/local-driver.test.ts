import { runtimeDriverSuite } from '../conformance.js';
import { localDriverSkipReason, prepareLocalHost, setUpTestDriver } from './test-support.js';

const skip = localDriverSkipReason();

if (skip) {
  // node:test has no describe-level skip with a reason that survives filtering; say it once.
  console.warn(`skipping local driver conformance: ${skip}`);
} else {
  runtimeDriverSuite('local', async () => {
    const { rootfs } = await prepareLocalHost();
    const setup = setUpTestDriver(rootfs, 1);
    const driver = setup.newDriver();
    return {
      driver,
      exec: (id, script) => driver.exec(id, ['sh', '-c', script]),
      reopen: async () => setup.newDriver(),
      cleanup: () => setup.cleanup(),
    };
  });
}
