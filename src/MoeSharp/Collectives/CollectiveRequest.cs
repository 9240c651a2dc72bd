namespace MoeSharp.Collectives;

/// <summary>
/// An exchange in flight, returned by the asynchronous collectives. <see cref="Wait"/> rethrows the exchange's failure
/// as a <see cref="CollectiveException"/>. A host request (<see cref="CollectiveRequest(Task)"/>) blocks in
/// <see cref="Wait"/> until this rank's part is complete: its receive buffer is filled and its send buffer is free
/// again. A device request (<see cref="OrderedOnDevice"/>) does not block: its <see cref="Wait"/> orders the rank's
/// later device work after the exchange, which is what completion means to code that only queues device work.
/// </summary>
public sealed class CollectiveRequest
{
    private readonly Task? _completion;
    private readonly Action? _orderAfter;
    private int _ordered;

    /// <summary>Wraps a task that completes when the exchange has finished on this rank.</summary>
    public CollectiveRequest(Task completion) =>
        _completion = completion ?? throw new ArgumentNullException(nameof(completion));

    private CollectiveRequest(Action orderAfter) => _orderAfter = orderAfter;

    /// <summary>A request that is already complete.</summary>
    public static CollectiveRequest Completed { get; } = new(Task.CompletedTask);

    /// <summary>
    /// A request completed in device order: the first <see cref="Wait"/> runs <paramref name="orderAfter"/>, which
    /// makes work queued afterwards on the rank's stream wait for the exchange (for example <c>cudaStreamWaitEvent</c>)
    /// and returns without waiting for it.
    /// </summary>
    public static CollectiveRequest OrderedOnDevice(Action orderAfter) =>
        new(orderAfter ?? throw new ArgumentNullException(nameof(orderAfter)));

    /// <summary>
    /// True once the exchange has finished (successfully or not); for a device request, once it is ordered.
    /// </summary>
    public bool IsCompleted => _completion?.IsCompleted ?? Volatile.Read(ref _ordered) != 0;

    /// <summary>
    /// Blocks until the exchange completes (a device request: orders later device work after it); throws its failure.
    /// </summary>
    public void Wait()
    {
        try
        {
            if (_orderAfter is not null)
            {
                if (Interlocked.Exchange(ref _ordered, 1) == 0)
                    _orderAfter();
                return;
            }
            _completion!.GetAwaiter().GetResult();
        }
        catch (CollectiveException)
        {
            throw;
        }
        catch (Exception ex)
        {
            throw new CollectiveException($"asynchronous exchange failed: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// The completion as a task, for callers that await (a device request's task orders it, as <see cref="Wait"/>
    /// does).
    /// </summary>
    public Task AsTask() => _completion ?? Task.Run(Wait);
}
