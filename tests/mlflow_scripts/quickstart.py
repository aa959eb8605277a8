# Follows MLflow's tracking quickstart: a LogisticRegression on iris, its params and accuracy
# logged by hand, a tag, the model logged with an inferred signature and loaded back to predict.
import mlflow
from mlflow.models import infer_signature
from sklearn import datasets
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

X, y = datasets.load_iris(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
params = {"solver": "lbfgs", "max_iter": 1000, "random_state": 8888}
model = LogisticRegression(**params).fit(X_train, y_train)
accuracy = accuracy_score(y_test, model.predict(X_test))
mlflow.set_experiment("MLflow Quickstart")
with mlflow.start_run(run_name="quickstart"):
    mlflow.log_params(params)
    mlflow.log_metric("accuracy", accuracy)
    mlflow.set_tag("Training Info", "Basic LR model for iris data")
    signature = infer_signature(X_train, model.predict(X_train))
    info = mlflow.sklearn.log_model(sk_model=model, name="iris_model", signature=signature)
loaded = mlflow.sklearn.load_model(info.model_uri)
EXTRA = {"same_predictions": loaded.predict(X_test).tolist() == model.predict(X_test).tolist(),
         "experiment": mlflow.get_experiment_by_name("MLflow Quickstart").name}
