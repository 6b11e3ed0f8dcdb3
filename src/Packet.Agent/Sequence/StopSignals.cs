using System.Runtime.InteropServices;
using Packet.Agent.Boot;

namespace Packet.Agent.Sequence;

/// <summary>
/// SIGTERM, SIGINT and SIGHUP until the agent execs COMMAND. As PID 1 of a container (an init
/// container's command) a signal without a handler is dropped by the kernel, so Kubernetes would
/// wait out the grace period and SIGKILL; as an ordinary process the agent would die mid-copy
/// without a word. With these handlers the first signal asks the boot to stop: the running step
/// winds down, the lock is released, the report written, and the agent exits 128 + the signal's
/// number. A second signal exits at once. After exec the signals are COMMAND's: execve resets
/// caught signals to their defaults.
/// </summary>
public static class StopSignals
{
    public static IDisposable Install(StopRequest request)
    {
        var registrations = new List<PosixSignalRegistration>();
        foreach (var (signal, number) in new[] { (PosixSignal.SIGTERM, 15), (PosixSignal.SIGINT, 2), (PosixSignal.SIGHUP, 1) })
        {
            registrations.Add(PosixSignalRegistration.Create(signal, context =>
            {
                context.Cancel = true; // the runtime's default would end the process here, without the wind-down
                if (!request.Request(number))
                {
                    Environment.Exit(128 + number); // asked twice: no more waiting
                }
            }));
        }

        return new Registrations(registrations);
    }

    private sealed class Registrations(List<PosixSignalRegistration> registrations) : IDisposable
    {
        public void Dispose()
        {
            foreach (var registration in registrations)
            {
                registration.Dispose();
            }
        }
    }
}
