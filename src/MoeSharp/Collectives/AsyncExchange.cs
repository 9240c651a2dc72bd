using System.Buffers;

namespace MoeSharp.Collectives;

/// <summary>
/// The resources an asynchronous exchange holds on one rank until it completes: the pins that keep its
/// buffers at fixed addresses, the timer that enforces the timeout, and the task behind its request.
/// Completed once, under the world lock (or by the caller when the exchange never started).
/// </summary>
internal sealed class AsyncExchange
{
    // Continuations run on the pool, never inline under the world lock.
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private MemoryHandle _sendPin;
    private MemoryHandle _receivePin;

    public AsyncExchange(MemoryHandle sendPin, MemoryHandle receivePin)
    {
        _sendPin = sendPin;
        _receivePin = receivePin;
    }

    public Task Task => _completion.Task;

    /// <summary>
    /// Fires when the exchange has waited longer than the timeout; set once the exchange is registered.
    /// </summary>
    public Timer? Timer { get; set; }

    private bool _completed;

    /// <summary>Releases the pins and the timer and completes the request; later calls do nothing.</summary>
    public void Complete(Exception? error)
    {
        if (_completed)
            return;
        _completed = true;
        Timer?.Dispose();
        _sendPin.Dispose();
        _receivePin.Dispose();
        if (error is null)
            _completion.TrySetResult();
        else
            _completion.TrySetException(error);
    }
}
