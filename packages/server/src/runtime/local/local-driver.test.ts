import { runtimeDriverSuite } from '../conformance.js';
import { prepareLocalHost, setUpTestDriver } from './test-support.js';

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
