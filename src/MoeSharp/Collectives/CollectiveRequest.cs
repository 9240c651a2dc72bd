namespace MoeSharp.Collectives;

/// <summary>
/// An exchange in flight, returned by the asynchronous collectives. <see cref="Wait"/> blocks until this
/// rank's part is complete (its receive buffer is filled and its send buffer is free again) and rethrows
/// the exchange's failure as a <see cref="CollectiveException"/>.
/// </summary>
public sealed class CollectiveRequest
{
    private readonly Task _completion;

    /// <summary>Wraps a task that completes when the exchange has finished on this rank.</summary>
    public CollectiveRequest(Task completion) => _completion = completion ?? throw new ArgumentNullException(nameof(completion));

    /// <summary>A request that is already complete.</summary>
    public static CollectiveRequest Completed { get; } = new(Task.CompletedTask);

    /// <summary>True once the exchange has finished (successfully or not).</summary>
    public bool IsCompleted => _completion.IsCompleted;

    /// <summary>Blocks until the exchange completes; throws its failure.</summary>
    public void Wait()
    {
        try
        {
            _completion.GetAwaiter().GetResult();
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

    /// <summary>The completion as a task, for callers that await.</summary>
    public Task AsTask() => _completion;
}
