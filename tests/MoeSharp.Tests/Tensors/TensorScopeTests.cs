using MoeSharp.Tensors;

namespace MoeSharp.Tests.Tensors;

public class TensorScopeTests
{
    [Fact]
    public void Dispose_ReturnsWhatWasRentedButNotKept()
    {
        var pool = new TensorPool(poisonReturned: true);
        Tensor kept,
            scratch;
        using (var scope = new TensorScope(pool))
        {
            scratch = scope.Rent(DType.Float32, 1 << 15);
            kept = scope.Keep(scope.Rent(DType.Float32, 1 << 15));
        }
        Assert.Throws<ObjectDisposedException>(() => scratch.AsSpan<float>()[0]);
        kept.AsSpan<float>()[0] = 1f;
        Assert.Equal(1f, kept.AsSpan<float>()[0]);
    }

    [Fact]
    public void Dispose_ReturnsEachTensorOnce_WhenAdoptedTwice()
    {
        var pool = new TensorPool();
        Tensor t = pool.Rent(DType.Float32, 1 << 15);
        using (var scope = new TensorScope(pool))
        {
            scope.Adopt(t);
            scope.Adopt(t);
        }
        Assert.Equal((long)t.Storage.Array.Length * sizeof(float), pool.RetainedBytes);
    }

    [Fact]
    public void Dispose_ReturnsRentedTensors_WhenTheCallThrows()
    {
        var pool = new TensorPool(poisonReturned: true);
        Tensor? scratch = null;
        void FailingCall()
        {
            using var scope = new TensorScope(pool);
            scratch = scope.Rent(DType.Int32, 1 << 15);
            throw new InvalidOperationException("the call failed");
        }
        Assert.Throws<InvalidOperationException>(FailingCall);
        Assert.Throws<ObjectDisposedException>(() => scratch!.AsSpan<int>()[0]);
    }

    [Fact]
    public void Keep_RejectsATensorTheScopeDoesNotHold()
    {
        var pool = new TensorPool();
        using var scope = new TensorScope(pool);
        Assert.Throws<ArgumentException>(() => scope.Keep(pool.Rent(DType.Float32, 4)));
    }
}
